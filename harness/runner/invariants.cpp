#include "harness/runner/invariants.hpp"

#include <map>
#include <string_view>

namespace relaylab::runner {

std::vector<invariant_failure> check_accepted_mail(std::span<const std::string> maillog,
                                                   std::span<const std::string> accepted,
                                                   const std::set<std::string>& queued) {
  struct id_facts {
    std::map<std::string, int> sent;  // recipient -> status=sent lines
    bool removed = false;
    bool finished_some = false;  // a sent, bounced or expired recipient
  };
  std::map<std::string, id_facts, std::less<>> facts;
  for (const auto& l : maillog) {
    const auto tag = l.find("]: ");
    if (tag == std::string::npos) continue;
    const auto id_at = tag + 3;
    const auto id_end = l.find(": ", id_at);
    if (id_end == std::string::npos || l.find(' ', id_at) < id_end) continue;
    const std::string_view rest = std::string_view(l).substr(id_end + 2);
    auto& f = facts[l.substr(id_at, id_end - id_at)];
    if (rest == "removed") f.removed = true;
    if (rest.rfind("to=<", 0) == 0) {
      const std::string rcpt(rest.substr(4, rest.find('>') - 4));
      if (rest.find("status=sent") != std::string_view::npos) {
        ++f.sent[rcpt];
        f.finished_some = true;
      }
      if (rest.find("status=bounced") != std::string_view::npos ||
          rest.find("status=expired") != std::string_view::npos) {
        f.finished_some = true;
      }
    }
  }
  std::vector<invariant_failure> out;
  const id_facts none;
  for (const auto& id : accepted) {
    const auto it = facts.find(id);
    const id_facts& f = it == facts.end() ? none : it->second;
    for (const auto& [rcpt, n] : f.sent) {
      if (n > 1) {
        out.push_back({"checker: " + id + " delivered to <" + rcpt + "> at most once",
                       std::to_string(n) + " deliveries"});
      }
    }
    if (!queued.count(id) && !(f.removed && f.finished_some)) {
      out.push_back({"checker: accepted message " + id + " is delivered, bounced or still queued",
                     f.removed ? "removed without a delivery or bounce" : "gone from the queue"});
    }
  }
  return out;
}

}  // namespace relaylab::runner
