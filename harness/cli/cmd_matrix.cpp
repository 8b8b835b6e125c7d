// relaylab matrix --config-dir DIR [--against DIR2 | --oracle postfix [--jobs N]]
//                 [--format text|markdown|csv|json] [--html]
//                 [--fold] [--highlight] [--sample AXIS.LABEL=VALUE]... [--auth-user U
//                 --auth-password P] [-o FILE] [--colour auto|always|never]
// The relay's policy as a truth table (harness/matrix): every listener x client x AUTH x
// sender x recipient cell driven through the real smtpd session in process. The resolved axes
// and the timing go to stderr; the table to stdout (or -o). Exit 0; with --against 0 when no
// cell decides differently and 1 when some do; with --oracle postfix 0 when a private Postfix
// answers every cell as relaylab does and 1 when it does not; 2 for bad options or
// configuration, or a Postfix that is not installed or does not start.
#include "harness/cli/commands.hpp"
#include "harness/matrix/matrix.hpp"
#include "harness/matrix/postfix_instance.hpp"

#include <unistd.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <memory>

namespace relaylab::cli {
namespace {

struct matrix_args {
  std::string config_dir, against, output, colour = "auto", format = "text";
  std::vector<std::string> samples;
  std::string auth_user, auth_password, oracle, inject;
  unsigned jobs = 8;
  bool html = false, fold = false, highlight = false;
};

/// Loads DIR and drives its table; nullopt after printing why (exit 2). `started` runs once the
/// configuration loaded, before any cell (the oracle's Postfix starts there, single-threaded);
/// false from it stops. `axes_out` receives the axes.
std::optional<matrix::table> table_for(
    const std::string& dir, const matrix::options& opt,
    const std::function<bool(const config::configuration&)>& started = {},
    std::optional<matrix::axes>* axes_out = nullptr) {
  auto cfg = config::load(dir, config::host_environment::from_system());
  for (const auto& d : cfg.diagnostics)
    if (d.level == config::diagnostic::severity::fatal) std::cerr << d.to_string() << "\n";
  if (!cfg.ok()) return std::nullopt;
  if (started && !started(cfg)) return std::nullopt;
  std::vector<std::string> errors;
  auto axes = matrix::make_axes(cfg, opt, errors);
  if (axes) {
    std::cerr << "relaylab matrix: " << dir << ": " << axes->listeners.size() << " listeners x "
              << axes->clients.size() << " clients x " << axes->auths.size() << " AUTH x "
              << axes->senders.size() << " senders x " << axes->recipients.size()
              << " recipients\n";
    for (const auto& c : axes->clients)
      std::cerr << "  client." << c.label << " = " << c.value
                << (c.name != "unknown" ? " (" + c.name + ")" : "") << ": " << c.why << "\n";
    for (const auto& s : axes->senders)
      std::cerr << "  sender." << s.label << " = <" << s.value << ">: " << s.why << "\n";
    for (const auto& s : axes->recipients)
      std::cerr << "  rcpt." << s.label << " = <" << s.value << ">: " << s.why << "\n";
  }
  std::optional<matrix::table> t;
  if (axes) t = matrix::run(cfg, *axes, errors);
  for (const auto& e : errors) std::cerr << "relaylab matrix: " << dir << ": " << e << "\n";
  if (axes_out) *axes_out = std::move(axes);
  return t;
}

/// Writes the table to stdout or -o FILE; false (after saying why) when that fails.
bool emit(const matrix_args& a, const std::string& out) {
  if (a.output.empty()) {
    std::cout << out;
    std::cout.flush();
    return static_cast<bool>(std::cout);
  }
  if (write_text_file(a.output, out)) return true;
  std::cerr << "relaylab matrix: cannot write " << a.output << "\n";
  return false;
}

/// The test hook --test-inject-difference KEY: relaylab's answer in that cell is made wrong,
/// so that a test can check that --oracle postfix catches it.
bool inject_difference(matrix::table& t, const std::string& key) {
  for (auto& c : t.cells) {
    if (c.key() != key) continue;
    auto& s = c.stages.back();
    s.reply = matrix::reply_code(s.reply) / 100 == 2 ? "554 5.7.1 injected by the test hook"
                                                     : "250 2.0.0 injected by the test hook";
    return true;
  }
  return false;
}

/// --oracle postfix: the table against a private Postfix; exit 0, 1 (differences) or 2.
int run_oracle(const matrix_args& a, const matrix::options& opt, matrix::format_options fo) {
  std::unique_ptr<matrix::postfix_instance> pf;
  double start_s = 0;
  auto start_postfix = [&](const config::configuration& cfg) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string error;
    pf = matrix::postfix_instance::start(cfg, error);
    if (!pf) {
      std::cerr << "relaylab matrix: --oracle postfix: " << error << "\n";
      return false;
    }
    start_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cerr << "relaylab matrix: --oracle postfix: Postfix " << pf->version() << " in "
              << pf->directory() << "\n";
    for (const auto& c : matrix::oracle_caveats(cfg))
      std::cerr << "relaylab matrix: --oracle postfix: caveat: " << c << "\n";
    return true;
  };
  std::optional<matrix::axes> axes;
  auto t = table_for(a.config_dir, opt, start_postfix, &axes);
  if (!t || !axes) return exit_usage;
  if (!a.inject.empty() && !inject_difference(*t, a.inject)) {
    std::cerr << "relaylab matrix: --test-inject-difference " << a.inject << ": no such cell\n";
    return exit_usage;
  }
  std::vector<std::string> errors;
  auto r = matrix::run_oracle(*pf, *t, *axes, a.jobs, errors);
  for (const auto& e : errors) std::cerr << "relaylab matrix: --oracle postfix: " << e << "\n";
  if (!r) return exit_usage;
  const std::size_t cells = t->cells.size();
  std::cerr << "relaylab matrix: --oracle postfix: Postfix " << pf->version() << " started in "
            << start_s << " s; " << cells << " cells in " << r->seconds << " s ("
            << (r->seconds > 0 ? static_cast<double>(cells) / r->seconds : 0.0) << " cells/s, "
            << a.jobs << " at once)\n";
  const std::string version = pf->version();
  pf.reset();
  fo.first_difference = true;
  fo.old_label = "relaylab";
  fo.new_label = "postfix";
  std::string out = matrix::render_differences(*t, r->postfix, r->differences, fo);
  if (fo.what == matrix::format::text && r->differences.empty())
    out = "relaylab: " + t->config_dir + "\npostfix: " + r->postfix.config_dir +
          "\nno cell differs between relaylab and Postfix " + version + " (" +
          std::to_string(cells) + " cells)\n";
  if (!emit(a, out)) return exit_failure;
  return r->differences.empty() ? exit_ok : exit_failure;
}

int run_matrix(const matrix_args& a) {
  matrix::options opt;
  for (const auto& s : a.samples) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "relaylab matrix: --sample " << s << ": expected AXIS.LABEL=VALUE\n";
      return exit_usage;
    }
    opt.overrides[s.substr(0, eq)] = s.substr(eq + 1);
  }
  if (a.auth_user.empty() != a.auth_password.empty()) {
    std::cerr << "relaylab matrix: --auth-user and --auth-password go together\n";
    return exit_usage;
  }
  if (!a.auth_user.empty()) opt.auth = matrix::credentials{a.auth_user, a.auth_password};

  matrix::format_options fo;
  static const std::map<std::string, matrix::format> formats{{"text", matrix::format::text},
                                                             {"markdown", matrix::format::markdown},
                                                             {"csv", matrix::format::csv},
                                                             {"json", matrix::format::json}};
  fo.what = a.html ? matrix::format::html : formats.at(a.format);
  fo.fold = a.fold;
  fo.highlight = a.highlight;
  fo.colour = fo.what == matrix::format::text && a.output.empty() &&
              (a.colour == "always" || (a.colour == "auto" && ::isatty(STDOUT_FILENO) == 1));

  if (!a.oracle.empty()) {
    if (!a.against.empty() || fo.what == matrix::format::html || fo.fold) {
      std::cerr << "relaylab matrix: --oracle goes without --against, --html and --fold\n";
      return exit_usage;
    }
    return run_oracle(a, opt, fo);
  }
  if (!a.inject.empty()) {
    std::cerr << "relaylab matrix: --test-inject-difference needs --oracle\n";
    return exit_usage;
  }

  const auto start = std::chrono::steady_clock::now();
  auto before = table_for(a.config_dir, opt);
  if (!before) return exit_usage;
  std::optional<matrix::table> after;
  if (!a.against.empty()) {
    after = table_for(a.against, opt);
    if (!after) return exit_usage;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::size_t cells = before->cells.size() + (after ? after->cells.size() : 0);
  std::cerr << "relaylab matrix: " << cells << " cells in " << seconds << " s ("
            << (seconds > 0 ? static_cast<double>(cells) / seconds : 0.0) << " cells/s)\n";

  std::string out;
  int status = exit_ok;
  if (after) {
    auto diffs = matrix::compare(*before, *after);
    out = matrix::render_differences(*before, *after, diffs, fo);
    status = diffs.empty() ? exit_ok : exit_failure;
  } else {
    out = matrix::render(*before, fo);
  }
  if (!emit(a, out)) return exit_failure;
  return status;
}

}  // namespace

subcommand add_matrix(CLI::App& root) {
  auto args = std::make_shared<matrix_args>();
  auto* app = root.add_subcommand(
      "matrix",
      "Print the relay's policy as a table: listener x client x AUTH x sender x "
      "recipient, each cell's replies and deciding restriction");
  app->add_option("--config-dir", args->config_dir, "directory with main.cf and master.cf")
      ->required();
  app->add_option("--against", args->against,
                  "second config directory: print only the cells that decide differently "
                  "(exit 1 if any)");
  app->add_option("--oracle", args->oracle,
                  "compute every cell with a private Postfix too (loopback, XCLIENT, its own "
                  "directories) and print the cells that differ (exit 1 if any)")
      ->check(CLI::IsMember({"postfix"}));
  app->add_option("--jobs", args->jobs, "--oracle: Postfix dialogues at once (default 8)")
      ->check(CLI::Range(1, 64));
  // Test hook (docs/matrix.md): makes relaylab's answer in one cell wrong.
  app->add_option("--test-inject-difference", args->inject)->group("");
  app->add_option("--format", args->format, "text, markdown, csv or json")
      ->check(CLI::IsMember({"text", "markdown", "csv", "json"}));
  app->add_flag("--html", args->html, "one HTML page with a filter per column");
  app->add_flag("--fold", args->fold, "one row per group of cells that decide alike");
  app->add_flag("--highlight", args->highlight,
                "mark open relays, authenticated users refused relay, AUTH without TLS, "
                "bare-LF exposure and defer/reject oddities");
  app->add_option("--sample", args->samples,
                  "override a sample: client.outside=IP, sender.local=ADDR, rcpt.foreign=ADDR, "
                  "auth=USER:PASSWORD ...");
  app->add_option("--auth-user", args->auth_user, "SASL user for the AUTH success column");
  app->add_option("--auth-password", args->auth_password, "its password");
  app->add_option("-o,--output", args->output, "write the table to FILE instead of stdout");
  app->add_option("--colour", args->colour, "auto (on a terminal), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  return {app, [args] { return run_matrix(*args); }};
}

}  // namespace relaylab::cli
