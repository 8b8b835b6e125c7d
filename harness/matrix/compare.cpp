// --against: the cells in which two configurations decide differently. Cells match by their
// labels (listener, client, AUTH, sender, recipient); replies compare with queue IDs
// normalised. A change of the deciding restriction alone, with the same replies, is no
// difference: the client cannot see it.
#include "harness/matrix/matrix.hpp"

#include <map>

namespace relaylab::matrix {
namespace {

std::vector<std::string> replies(const cell& c) {
  std::vector<std::string> out;
  for (const auto& s : c.stages) out.push_back(s.stage + " " + normalize_reply(s.reply));
  return out;
}

}  // namespace

std::vector<difference> compare(const table& before, const table& after) {
  std::map<std::string, const cell*> by_key;
  for (const auto& c : after.cells) by_key[c.key()] = &c;
  std::vector<difference> out;
  std::map<std::string, bool> seen;
  for (const auto& c : before.cells) {
    seen[c.key()] = true;
    auto it = by_key.find(c.key());
    if (it == by_key.end()) {
      out.push_back({c.key(), &c, nullptr});
    } else if (replies(c) != replies(*it->second)) {
      out.push_back({c.key(), &c, it->second});
    }
  }
  for (const auto& c : after.cells)
    if (!seen.count(c.key())) out.push_back({c.key(), nullptr, &c});
  return out;
}

}  // namespace relaylab::matrix
