// The runner's end-of-scenario checker for accepted mail, on the maillog and the queue alone, so
// it can be tested with made-up lines (invariants_test.cpp).
#pragma once

#include <set>
#include <span>
#include <string>
#include <vector>

namespace relaylab::runner {

struct invariant_failure {
  std::string expected;
  std::string got;
};

/// Every message a relay accepted (`accepted`: queue IDs its smtpd committed) must be still
/// queued (`queued`), or removed after at least one recipient was sent, bounced or expired; and
/// no recipient of it may be logged `status=sent` twice. `maillog` holds whole maillog lines
/// ("... prog[pid]: ID: text"); one pass over it, then a lookup per accepted ID.
std::vector<invariant_failure> check_accepted_mail(std::span<const std::string> maillog,
                                                   std::span<const std::string> accepted,
                                                   const std::set<std::string>& queued);

}  // namespace relaylab::runner
