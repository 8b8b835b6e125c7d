#include "relay/queue/error.hpp"

#include <string>

namespace relaylab::queue {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "relaylab.queue"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::write_error:
        return "queue file write error";
      case errc::insufficient_space:
        return "insufficient system storage";
      case errc::message_too_large:
        return "message size exceeds fixed limit";
      case errc::too_many_recipients:
        return "too many recipients";
      case errc::not_found:
        return "no such queue file";
      case errc::corrupt:
        return "corrupt queue file";
      case errc::read_error:
        return "queue file read error";
      case errc::invalid_state:
        return "operation not valid in this state";
      case errc::id_exhausted:
        return "no unused queue ID";
    }
    return "unknown queue error";
  }
};

}  // namespace

const std::error_category& queue_category() noexcept {
  static const category instance;
  return instance;
}

std::string_view smtp_reply(std::error_code ec) noexcept {
  if (ec.category() == queue_category()) {
    switch (static_cast<errc>(ec.value())) {
      case errc::insufficient_space:
        return "452 4.3.1 Insufficient system storage";
      case errc::message_too_large:
        return "552 5.3.4 Message size exceeds fixed limit";
      case errc::too_many_recipients:
        return "452 4.5.3 Error: too many recipients";
      default:
        break;
    }
  }
  return "451 4.3.0 Error: queue file write error";
}

}  // namespace relaylab::queue
