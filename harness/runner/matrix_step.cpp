#include "harness/runner/matrix_step.hpp"

#include "harness/runner/expectations.hpp"

namespace relaylab::runner::detail {

std::optional<matrix::table> run_matrix_step(const topology::step& st,
                                             const config::configuration& cfg,
                                             const std::vector<topology::sasl_user>& users,
                                             std::vector<failure>& out) {
  matrix::options opt;
  if (!users.empty())
    opt.auth =
        matrix::credentials{users.front().name + "@" + users.front().realm, users.front().password};
  std::vector<std::string> errors;
  auto axes = matrix::make_axes(cfg, opt, errors);
  std::optional<matrix::table> t;
  if (axes) t = matrix::run(cfg, *axes, errors);
  for (const auto& e : errors)
    out.push_back({st.where, "the policy table of " + st.matrix.relay, e});
  if (!t) return std::nullopt;
  // One failure per forbidden kind: its first cell, and how many more there are.
  const auto findings = matrix::highlight(*t);
  for (const auto& kind : st.matrix.expect_no) {
    const matrix::finding* first = nullptr;
    std::size_t n = 0;
    for (const auto& f : findings) {
      if (f.kind != kind) continue;
      if (!first) first = &f;
      ++n;
    }
    if (first)
      out.push_back({st.where, "no " + kind + " cell in " + st.matrix.relay + "'s policy",
                     first->text + (n > 1 ? " (and " + std::to_string(n - 1) + " more)" : "")});
  }
  return t;
}

void judge_matrix_cell(const topology::expectation& x, const matrix::table* t,
                       std::vector<failure>& out) {
  if (!t) {
    out.push_back({x.where, "matrix step " + x.step + " to have run", "it did not"});
    return;
  }
  const std::string want =
      x.listener + "|" + x.client + "|" + x.auth + "|" + x.sender + "|" + x.cell_recipient;
  std::size_t matched = 0;
  for (const auto& c : t->cells) {
    if (!glob(x.listener, c.listener) || !glob(x.client, c.client) || !glob(x.auth, c.auth) ||
        !glob(x.sender, c.sender) || !glob(x.cell_recipient, c.recipient))
      continue;
    ++matched;
    const auto& s = c.decisive();
    const std::string got = c.key() + ": " + (c.accepted() ? "accepted" : "refused") + " at " +
                            s.stage + ": " + s.reply + " (decided by " +
                            (c.decided_by().empty() ? "no restriction" : c.decided_by()) + ")";
    const bool ok = (x.outcome.empty() || (x.outcome == "accepted") == c.accepted()) &&
                    (x.stage.empty() || x.stage == s.stage) &&
                    (x.reply.empty() || glob(x.reply, s.reply)) &&
                    (x.decided_by.empty() || glob(x.decided_by, c.decided_by()));
    if (!ok) {
      std::string expected = "cell " + want;
      if (!x.outcome.empty()) expected += " " + x.outcome;
      if (!x.stage.empty()) expected += " at " + x.stage;
      if (!x.reply.empty()) expected += ": " + x.reply;
      if (!x.decided_by.empty()) expected += " (decided by " + x.decided_by + ")";
      out.push_back({x.where, expected, got});
      return;  // the first cell that does not hold says enough
    }
  }
  if (matched == 0)
    out.push_back({x.where, "a cell " + want + " in the table of step " + x.step,
                   "none of its " + std::to_string(t->cells.size()) + " cells matches"});
}

}  // namespace relaylab::runner::detail
