// The Availability Zones Fn::GetAZs gives (evaluator.hpp: availability_zones).
//
// Which zones an account sees, and which letter names which physical zone, depends on the
// account: AWS maps zone names to zones per account, and zones opened or closed over the years
// are visible to some accounts and not others. The table is what a new account sees (the zones
// `aws ec2 describe-availability-zones` lists with state "available" and opt-in status
// "opt-in-not-required", without Local and Wavelength Zones, which Fn::GetAZs does not return
// either). An account that sees others gives them with --azs.
#include "harness/cfn/evaluator.hpp"

#include <map>

namespace relaylab::cfn {

std::optional<std::vector<std::string>> known_availability_zones(const std::string& region) {
  // Region → the zones' letters.
  static const std::map<std::string, std::string> letters = {
      {"us-east-1", "abcdef"},  // us-east-1e is not offered to new accounts' instances of every
                                // type, but Fn::GetAZs lists it
      {"us-east-2", "abc"},
      {"us-west-1", "bc"},  // two zones; older accounts see them as a and b or a and c
      {"us-west-2", "abcd"},
      {"ca-central-1", "abd"},  // ca-central-1c is not offered to new accounts
      {"ca-west-1", "abc"},
      {"mx-central-1", "abc"},
      {"sa-east-1", "abc"},
      {"eu-west-1", "abc"},
      {"eu-west-2", "abc"},
      {"eu-west-3", "abc"},
      {"eu-central-1", "abc"},
      {"eu-central-2", "abc"},
      {"eu-north-1", "abc"},
      {"eu-south-1", "abc"},
      {"eu-south-2", "abc"},
      {"il-central-1", "abc"},
      {"me-south-1", "abc"},
      {"me-central-1", "abc"},
      {"af-south-1", "abc"},
      {"ap-northeast-1", "acd"},  // ap-northeast-1b is not offered to new accounts
      {"ap-northeast-2", "abcd"},
      {"ap-northeast-3", "abc"},
      {"ap-east-1", "abc"},
      {"ap-south-1", "abc"},
      {"ap-south-2", "abc"},
      {"ap-southeast-1", "abc"},
      {"ap-southeast-2", "abc"},
      {"ap-southeast-3", "abc"},
      {"ap-southeast-4", "abc"},
      {"ap-southeast-5", "abc"},
      {"ap-southeast-7", "abc"},
      {"cn-north-1", "abd"},
      {"cn-northwest-1", "abc"},
      {"us-gov-west-1", "abc"},
      {"us-gov-east-1", "abc"},
  };
  const auto it = letters.find(region);
  if (it == letters.end()) return std::nullopt;
  std::vector<std::string> out;
  for (char c : it->second) out.push_back(region + c);
  return out;
}

std::optional<std::string> check_azs_option(const std::vector<std::string>& azs,
                                            const std::string& region) {
  if (azs.empty()) return "--azs: expected NAME,NAME,... (one Availability Zone at least)";
  for (std::size_t i = 0; i < azs.size(); ++i) {
    const auto& z = azs[i];
    const bool ok = z.size() == region.size() + 1 && z.compare(0, region.size(), region) == 0 &&
                    z.back() >= 'a' && z.back() <= 'z';
    if (!ok) {
      return "--azs " + z + ": not an Availability Zone name of " + region +
             " (--region): expected " + region + " and a letter, such as " + region + "a";
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (azs[j] == z) return "--azs " + z + ": given twice";
    }
  }
  return std::nullopt;
}

}  // namespace relaylab::cfn
