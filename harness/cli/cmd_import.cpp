// relaylab import cfn TEMPLATE... [--param K=V]... [--region R] [--azs AZ,AZ...] [--ip HOST=IP]...
//   [--public-ip NAME=IP]... [--prefix-list ID=CIDR[,CIDR...]]... [--stack-template URL=FILE]...
//   [-o OUT.xml] [--explain HOST:PORT FROM]
// CloudFormation templates (YAML or JSON, several stacks at once) into the network part of a
// topology (harness/cfn). Errors as FILE:LINE:COLUMN: error: ... and exit 2; warnings (resource
// types outside the network model) as FILE:LINE:COLUMN: warning: ... on standard error.
// --explain prints the path a connection would take through the imported network, hop by hop,
// with the rule that lets it through or drops it (the simulation's own decision); exit 0 when
// it gets through, 1 when it does not.
#include "harness/cfn/cfn.hpp"
#include "harness/cfn/explain.hpp"
#include "harness/cli/commands.hpp"

#include <iostream>

namespace relaylab::cli {

namespace {

// `last`: split at the last '=' (a URL's query may hold some; a file name seldom does).
bool split_pairs(const std::vector<std::string>& in, const char* option,
                 std::vector<std::pair<std::string, std::string>>& out, bool last = false) {
  for (const auto& kv : in) {
    const auto eq = last ? kv.rfind('=') : kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "relaylab import cfn: " << option << " " << kv << ": expected NAME=VALUE\n";
      return false;
    }
    out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return true;
}

}  // namespace

subcommand add_import(CLI::App& root) {
  subcommand c;
  c.app = root.add_subcommand("import", "Import a network from infrastructure templates");
  c.app->require_subcommand(1);
  auto* cfn = c.app->add_subcommand("cfn", "CloudFormation templates (YAML or JSON) → topology");
  struct opts {
    std::vector<std::string> files, params, ips, public_ips, prefix_lists, stack_templates, explain;
    std::string region = "us-east-1", azs, out, name = "imported";
  };
  auto o = std::make_shared<opts>();
  cfn->add_option("TEMPLATE", o->files, "Template files, in any order")->required();
  cfn->add_option("--param", o->params, "KEY=VALUE for a parameter of any template");
  cfn->add_option("--region", o->region, "AWS::Region (default us-east-1)");
  auto* azs_option = cfn->add_option(
      "--azs", o->azs,
      "NAME,NAME,...: the Availability Zones Fn::GetAZs gives in the region (default: "
      "those of a new account)");
  cfn->add_option("--ip", o->ips, "HOST=ADDRESS: the private address of an instance");
  cfn->add_option("--public-ip", o->public_ips,
                  "NAME=ADDRESS: the public address of an instance or an EIP");
  cfn->add_option("--prefix-list", o->prefix_lists,
                  "ID=CIDR[,CIDR...]: the entries of a prefix list no template defines (an "
                  "AWS-managed one such as com.amazonaws.REGION.s3), for rules with "
                  "SourcePrefixListId/DestinationPrefixListId");
  cfn->add_option("--stack-template", o->stack_templates,
                  "URL=FILE: the template of a nested stack (AWS::CloudFormation::Stack) whose "
                  "TemplateURL is URL (a local TemplateURL is read relative to its parent)");
  cfn->add_option("-o,--output", o->out, "Write the topology XML here (default: stdout)");
  cfn->add_option("--name", o->name, "The topology's name attribute");
  cfn->add_option("--explain", o->explain, "HOST:PORT FROM: the path of a connection")->expected(2);
  c.run = [o, azs_option] {
    cfn::import_options io;
    io.eval.region = o->region;
    if (azs_option->count() > 0) {
      for (std::size_t start = 0;;) {
        const auto comma = o->azs.find(',', start);
        io.eval.azs.push_back(o->azs.substr(start, comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      if (auto bad = cfn::check_azs_option(io.eval.azs, io.eval.region)) {
        std::cerr << "relaylab import cfn: " << *bad << "\n";
        return exit_usage;
      }
    }
    if (!split_pairs(o->params, "--param", io.eval.params) ||
        !split_pairs(o->ips, "--ip", io.ips) ||
        !split_pairs(o->public_ips, "--public-ip", io.public_ips) ||
        !split_pairs(o->prefix_lists, "--prefix-list", io.prefix_lists) ||
        !split_pairs(o->stack_templates, "--stack-template", io.stack_templates, true)) {
      return exit_usage;
    }
    std::vector<cfn::diagnostic> errors;
    const auto r = cfn::import_templates(o->files, io, errors);
    for (const auto& e : errors) std::cerr << e.to_string() << "\n";
    if (!r) {
      std::cerr << "relaylab import cfn: " << errors.size()
                << (errors.size() == 1 ? " error" : " errors") << "\n";
      return exit_usage;
    }
    for (const auto& w : r->warnings) {
      std::cerr << w.where.to_string() << ": warning: " << w.message << "\n";
    }
    std::string generated = "relaylab import cfn";
    for (const auto& f : o->files) generated += " " + f;
    const std::string xml = cfn::write_topology(*r, o->name, generated);
    if (!o->out.empty() && !write_text_file(o->out, xml)) {
      std::cerr << "relaylab import cfn: cannot write " << o->out << "\n";
      return exit_failure;
    }
    if (o->explain.size() == 2) {
      std::string error;
      const auto text = cfn::explain(*r, o->explain[0], o->explain[1], error);
      if (!text) {
        std::cerr << "relaylab import cfn --explain: " << error << "\n";
        return exit_usage;
      }
      std::cout << text->text;
      return text->connected ? exit_ok : exit_failure;
    }
    if (o->out.empty()) std::cout << xml;
    return exit_ok;
  };
  return c;
}

}  // namespace relaylab::cli
