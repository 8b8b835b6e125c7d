// The prefix lists that security group rules name (SourcePrefixListId,
// DestinationPrefixListId): an AWS::EC2::PrefixList of the templates, read from its Entries and
// AddressFamily, or the entries given with --prefix-list ID=CIDR[,CIDR...] for a list no
// template defines (AWS-managed ones such as com.amazonaws.REGION.s3).
#include "harness/cfn/builder.hpp"
#include "harness/cfn/evaluator_support.hpp"

namespace relaylab::cfn::detail {

namespace {

bool is_block(const std::string& s) {
  return s.find('/') != std::string::npos && sim::parse_cidr(s).has_value();
}

}  // namespace

const std::map<std::string, std::vector<std::string>>& builder::given_prefix_lists() {
  if (given_prefix_lists_) return *given_prefix_lists_;
  given_prefix_lists_.emplace();
  for (const auto& [id, list] : opts_.prefix_lists) {
    const position at{"--prefix-list", 0, 0};
    const std::string option = id + "=" + list;
    std::vector<std::string> blocks;
    bool ok = true;
    for (const auto& item : split(list, ",")) {
      const auto b = trim(item);
      if (!is_block(b)) {
        errors_.push_back({at, option + ": expected ID=CIDR[,CIDR...], and '" + b +
                                   "' is not a CIDR block such as 52.216.0.0/15"});
        ok = false;
        break;
      }
      blocks.push_back(sim::parse_cidr(b)->to_string());
    }
    if (!ok) continue;
    if (!given_prefix_lists_->emplace(id, std::move(blocks)).second) {
      errors_.push_back({at, option + ": prefix list " + id + " is given twice"});
    }
  }
  return *given_prefix_lists_;
}

std::optional<std::vector<std::string>> builder::prefix_list(const node& v,
                                                             const std::string& logical,
                                                             const std::string& what) {
  if (!v.is_scalar()) {
    error(v.where, logical, what + ": expected the ID of a prefix list");
    return std::nullopt;
  }
  const resource* r = ev_.by_id(v.value);
  if (r && r->type == "AWS::EC2::PrefixList") {
    auto& memo = prefix_lists_[r];
    if (memo) return memo;
    const auto family = str(*r, "AddressFamily").value_or("");
    if (family != "IPv4" && family != "IPv6") {
      error(ev_.property_where(*r, "AddressFamily"), r->logical,
            "AddressFamily: expected IPv4 or IPv6, got '" + family + "'");
      return std::nullopt;
    }
    std::vector<std::string> blocks;
    auto entries = ev_.property(*r, "Entries");
    if (entries && !entries->is_sequence()) {
      error(entries->where, r->logical, "Entries: expected a list of {Cidr, Description}");
      return std::nullopt;
    }
    bool ok = true;
    for (const auto& e : entries ? entries->items : std::vector<node>{}) {
      const node* c = e.find("Cidr");
      const auto block = c && c->is_scalar() ? sim::parse_cidr(c->value) : std::nullopt;
      if (!block || c->value.find('/') == std::string::npos) {
        error(c ? c->where : e.where, r->logical,
              "Entries: expected Cidr: an " + family + " CIDR block, got '" +
                  (c ? c->value : std::string()) + "'");
        ok = false;
      } else if (block->base.v6 != (family == "IPv6")) {
        error(c->where, r->logical,
              "Entries: " + c->value + " is not an " + family + " block (AddressFamily)");
        ok = false;
      } else {
        blocks.push_back(block->to_string());
      }
    }
    if (auto max = str(*r, "MaxEntries")) {
      std::size_t n = 0;
      try {
        n = std::stoul(*max);
      } catch (...) {
        n = 0;
      }
      if (n < 1 || blocks.size() > n) {
        error(ev_.property_where(*r, "MaxEntries"), r->logical,
              "MaxEntries: expected a number of at least the " + std::to_string(blocks.size()) +
                  " entries, got '" + *max + "'");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    memo = blocks;
    return memo;
  }
  const auto& given = given_prefix_lists();
  if (const auto it = given.find(v.value); it != given.end()) return it->second;
  error(v.where, logical,
        what + ": prefix list '" + v.value +
            "' is neither an AWS::EC2::PrefixList of the templates given nor given with "
            "--prefix-list; for an AWS-managed list pass its entries: --prefix-list " +
            v.value + "=CIDR[,CIDR...] (aws ec2 get-managed-prefix-list-entries --prefix-list-id " +
            v.value + ")");
  return std::nullopt;
}

}  // namespace relaylab::cfn::detail
