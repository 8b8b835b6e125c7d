// <matrix> steps and <expect-matrix-cell>: the relay's policy table (harness/matrix) computed
// from the configuration the scenario runs, its --highlight findings checked against
// expect-no, its cells against <expect-matrix-cell>. Internal to harness/runner.
#pragma once

#include "harness/matrix/matrix.hpp"
#include "harness/runner/runner.hpp"
#include "harness/topology/topology.hpp"
#include "relay/config/config.hpp"

#include <optional>
#include <string>
#include <vector>

namespace relaylab::runner::detail {

/// The table of `cfg` (AUTH success with the first of `users`, as "name@realm"), or nullopt
/// with a failure at the step. Every finding of a kind in expect-no is a failure too.
std::optional<matrix::table> run_matrix_step(const topology::step& st,
                                             const config::configuration& cfg,
                                             const std::vector<topology::sasl_user>& users,
                                             std::vector<failure>& out);

/// <expect-matrix-cell> against `t` (null: its step did not run).
void judge_matrix_cell(const topology::expectation& x, const matrix::table* t,
                       std::vector<failure>& out);

}  // namespace relaylab::runner::detail
