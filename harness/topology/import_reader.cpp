// <import cfn="..."/>: a network imported from CloudFormation templates (harness/cfn) into the
// topology, at the root (the network of every scenario) or inside a <scenario> (that
// scenario's network instead: the same hosts, from other templates).
#include "harness/cfn/cfn.hpp"
#include "harness/topology/reader.hpp"

namespace relaylab::topology::detail {

namespace {

// "K=V K=V" → pairs; an error at the attribute otherwise. With `lists`, "K=A,B" is one pair
// whose value is the list "A,B" (split_words splits at commas too).
// With `last`, the pair splits at the last '=' (a URL's query may hold some).
std::vector<std::pair<std::string, std::string>> pairs(reader& r, const pugi::xml_node& n,
                                                       const char* attr, bool lists = false,
                                                       bool last = false) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : split_words(r.str(n, attr))) {
    const auto eq = last ? kv.rfind('=') : kv.find('=');
    if (lists && eq == std::string::npos && !out.empty()) {
      out.back().second += "," + kv;
      continue;
    }
    if (eq == std::string::npos || eq == 0) {
      r.error(r.at(n, attr), "attribute '" + std::string(attr) + "': expected " +
                                 (lists ? "ID=CIDR[,CIDR...] ..." : "NAME=VALUE ...") + ", got '" +
                                 kv + "'");
      continue;
    }
    out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return out;
}

}  // namespace

std::optional<sim::network_spec> read_import(reader& r, const pugi::xml_node& n) {
  r.attrs(
      n, {"cfn", "params", "region", "azs", "ips", "public-ips", "prefix-lists", "stack-templates"},
      {"cfn"});
  r.children(n, {});
  cfn::import_options o;
  o.eval.params = pairs(r, n, "params");
  o.ips = pairs(r, n, "ips");
  o.public_ips = pairs(r, n, "public-ips");
  o.prefix_lists = pairs(r, n, "prefix-lists", true);
  // URL=FILE ...: nested stacks' templates (as --stack-template), FILE relative to the topology.
  for (auto& [url, file] : pairs(r, n, "stack-templates", false, true)) {
    o.stack_templates.emplace_back(url, (fs::path(r.base_dir_) / file).lexically_normal().string());
  }
  if (n.attribute("region")) o.eval.region = r.str(n, "region");
  if (n.attribute("azs")) {
    // "NAME,NAME,..." (or space-separated), as --azs.
    o.eval.azs = split_words(r.str(n, "azs"));
    if (auto bad = cfn::check_azs_option(o.eval.azs, o.eval.region)) {
      r.error(r.at(n, "azs"), "attribute 'azs': " + *bad);
    }
  }
  std::vector<std::string> files;
  for (const auto& f : split_words(r.str(n, "cfn"))) {
    files.push_back((fs::path(r.base_dir_) / f).lexically_normal().string());
  }
  if (files.empty()) r.error(r.at(n, "cfn"), "attribute 'cfn': expected template files");
  if (r.failed()) return std::nullopt;
  std::vector<cfn::diagnostic> errors;
  auto result = cfn::import_templates(files, o, errors);
  for (const auto& e : errors) {
    // Errors about the options themselves (a host that --ip names ...) have no template line.
    const char* attr = e.where.file == "--public-ip"        ? "public-ips"
                       : e.where.file == "--prefix-list"    ? "prefix-lists"
                       : e.where.file == "--stack-template" ? "stack-templates"
                                                            : "ips";
    location where =
        e.where.line == 0 ? r.at(n, attr) : location{e.where.file, e.where.line, e.where.column};
    r.error(where, e.message);
  }
  if (!result) return std::nullopt;
  // Warnings (types outside the network model) are not errors: `relaylab import cfn` shows
  // them.
  return std::move(result->network);
}

}  // namespace relaylab::topology::detail
