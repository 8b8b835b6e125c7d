#include "harness/runner/expectations.hpp"

#include "fakes/client/dialogue.hpp"

#include <iomanip>
#include <sstream>

namespace relaylab::runner::detail {

std::string ms_text(std::chrono::nanoseconds d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  std::ostringstream o;
  o << ms / 1000 << "." << std::setfill('0') << std::setw(3) << ms % 1000 << "s";
  return o.str();
}

bool glob(const std::string& pattern, const std::string& text) {
  return fakes::client::glob_match(pattern, text);
}

// expect-tls / tls="...": "yes", "no" or the protocol.
bool tls_matches(const std::string& want, const std::optional<tls::session_info>& got) {
  if (want == "no") return !got;
  if (want == "yes") return got.has_value();
  return got && got->protocol == want;
}

void judge(const topology::expectation& x, const observed& o, std::vector<failure>& out) {
  using topology::expect_kind;
  auto fail = [&](const topology::location& where, std::string expected, std::string got) {
    out.push_back({where, std::move(expected), std::move(got)});
  };
  const auto& lines = o.maillog;
  switch (x.kind) {
    case expect_kind::maillog: {
      std::uint64_t n = 0;
      for (const auto& l : lines) n += glob(x.patterns[0], l) ? 1 : 0;
      if (x.absent && n > 0) {
        fail(x.where, "no maillog line matching \"" + x.patterns[0] + "\"",
             std::to_string(n) + " matching lines");
      } else if (x.count && n != *x.count) {
        fail(x.where,
             std::to_string(*x.count) + " maillog lines matching \"" + x.patterns[0] + "\"",
             std::to_string(n) + " lines" + (lines.empty() ? " (the maillog is empty)" : ""));
      } else if (!x.absent && !x.count && n == 0) {
        fail(x.where, "a maillog line matching \"" + x.patterns[0] + "\"",
             lines.empty() ? "the maillog is empty" : "none; last line: " + lines.back());
      }
      return;
    }
    case expect_kind::maillog_sequence: {
      std::size_t at = 0;
      for (std::size_t p = 0; p < x.patterns.size(); ++p) {
        while (at < lines.size() && !glob(x.patterns[p], lines[at])) ++at;
        if (at == lines.size()) {
          fail(x.where,
               "maillog line " + std::to_string(p + 1) + " of the sequence: \"" + x.patterns[p] +
                   "\"",
               "no such line after the earlier ones (" + std::to_string(lines.size()) +
                   " lines in the maillog)");
          return;
        }
        ++at;
      }
      return;
    }
    case expect_kind::mailbox: {
      const fakes::mx::server* srv = o.mailbox(x.host);
      if (!srv) {
        fail(x.where, "an MX on " + x.host, "none");
        return;
      }
      std::uint64_t n = 0;
      for (const auto& m : srv->mailbox()) {
        bool rcpt_ok = x.recipient.empty();
        for (const auto& r : m.recipients) rcpt_ok = rcpt_ok || r == x.recipient;
        const bool content_ok = x.contains.empty() || glob(x.contains, m.data);
        const bool tls_ok = x.tls.empty() || (x.tls == "yes"  ? m.tls
                                              : x.tls == "no" ? !m.tls
                                                              : m.tls && m.tls_protocol == x.tls);
        n += rcpt_ok && content_ok && tls_ok ? 1 : 0;
      }
      const std::uint64_t want = x.count.value_or(1);
      if (x.count ? n != want : n == 0) {
        fail(x.where,
             (x.count ? std::to_string(want) : std::string("at least one")) + " message(s) at " +
                 x.host + (x.recipient.empty() ? "" : " for " + x.recipient) +
                 (x.contains.empty() ? "" : " containing \"" + x.contains + "\"") +
                 (x.tls.empty() ? "" : " with TLS " + x.tls),
             std::to_string(n) + " (mailbox holds " + std::to_string(srv->mailbox().size()) + ")");
      }
      return;
    }
    case expect_kind::queue: {
      const auto [in, act, def] = o.queue();
      auto cmp = [&](const char* what, const std::optional<std::uint64_t>& want,
                     std::uint64_t got) {
        if (want && *want != got) {
          fail(x.where, std::string(what) + " = " + std::to_string(*want),
               std::string(what) + " = " + std::to_string(got));
        }
      };
      cmp("incoming", x.incoming, in);
      cmp("active", x.active, act);
      cmp("deferred", x.deferred, def);
      return;
    }
    case expect_kind::load: {
      const load_outcome* l = o.load(x.step);
      if (!l) {
        fail(x.where, "load " + x.step + " to have started", "it did not");
        return;
      }
      if (!l->done) {
        fail(x.where, "load " + x.step + " to have finished", "still running at " + ms_text(o.now));
        return;
      }
      const auto& rep = l->report;
      std::string errors;
      for (const auto& [what, n] : rep.errors) {
        errors += (errors.empty() ? "; errors: " : ", ") + what + " x" + std::to_string(n);
      }
      const std::string got = std::to_string(rep.messages_ok) + " accepted, " +
                              std::to_string(rep.messages_failed) + " failed" + errors;
      if (x.accepted && rep.messages_ok != *x.accepted) {
        fail(x.where, std::to_string(*x.accepted) + " messages accepted", got);
      }
      if (x.failed && rep.messages_failed != *x.failed) {
        fail(x.where, std::to_string(*x.failed) + " messages failed", got);
      }
      if (x.accepted_min && rep.messages_ok < *x.accepted_min) {
        fail(x.where, "at least " + std::to_string(*x.accepted_min) + " messages accepted", got);
      }
      if (x.accepted_max && rep.messages_ok > *x.accepted_max) {
        fail(x.where, "at most " + std::to_string(*x.accepted_max) + " messages accepted", got);
      }
      return;
    }
    case expect_kind::matrix_cell:
      return;  // judged against the step's table by the runner (matrix_step.cpp)
    case expect_kind::duration: {
      const auto it = o.step_times.find(x.step);
      if (it == o.step_times.end()) {
        fail(x.where, "step " + x.step + " to have run", "it did not");
        return;
      }
      const auto took = it->second;
      if ((x.min && took < *x.min) || (x.max && took > *x.max)) {
        fail(x.where,
             "step " + x.step + " to take" + (x.min ? " at least " + ms_text(*x.min) : "") +
                 (x.max ? " at most " + ms_text(*x.max) : ""),
             ms_text(took));
      }
      return;
    }
  }
}

}  // namespace relaylab::runner::detail
