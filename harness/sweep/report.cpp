#include "harness/sweep/report.hpp"

#include "harness/runner/report.hpp"
#include "harness/runner/shard.hpp"
#include "relay/log/log.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace relaylab::sweep {

namespace {

std::string seconds_text(std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ns / 1000000000),
                static_cast<long long>(ns / 1000000 % 1000));
  return buf;
}

struct totals {
  std::uint64_t passed = 0, failed = 0, events = 0;
  std::int64_t virtual_ns = 0;
};

totals sum(const sweep_report& r) {
  totals t;
  for (const auto& c : r.cases) {
    (c.passed ? t.passed : t.failed) += 1;
    t.events += c.events;
    t.virtual_ns += c.virtual_ns;
  }
  return t;
}

}  // namespace

std::string replay_command(const sweep_report& r, std::uint64_t seed) {
  return "relaylab sweep --count 1 --seed " + std::to_string(seed) +
         (r.relay_crash ? "" : " --no-relay-crash");
}

std::string to_json(const sweep_report& r) {
  const auto t = sum(r);
  std::ostringstream o;
  o << "{\"relaylab\":\"sweep-report\",\"version\":1,\"first_seed\":" << r.first_seed
    << ",\"count\":" << r.count << ",\"relay_crash\":" << (r.relay_crash ? "true" : "false")
    << ",\"shard\":{\"index\":" << r.shard_index + 1 << ",\"count\":" << r.shard_count << "}"
    << ",\"passed\":" << t.passed << ",\"failed\":" << t.failed
    << ",\"virtual_ns\":" << t.virtual_ns << ",\"events\":" << t.events << ",\"cases\":[";
  for (std::size_t i = 0; i < r.cases.size(); ++i) {
    const auto& c = r.cases[i];
    o << (i ? ",\n" : "\n") << "{\"seed\":" << c.seed
      << ",\"passed\":" << (c.passed ? "true" : "false") << ",\"virtual_ns\":" << c.virtual_ns
      << ",\"events\":" << c.events;
    if (!c.passed) {
      o << ",\"summary\":" << log::json_quote(c.summary) << ",\"problems\":[";
      for (std::size_t k = 0; k < c.problems.size(); ++k)
        o << (k ? "," : "") << log::json_quote(c.problems[k]);
      o << "],\"replay\":" << log::json_quote(replay_command(r, c.seed));
    }
    o << "}";
  }
  o << "\n]}\n";
  return o.str();
}

std::string to_junit(const sweep_report& r) {
  const auto t = sum(r);
  const std::string suite = "relaylab sweep --count " + std::to_string(r.count) + " --seed " +
                            std::to_string(r.first_seed) +
                            (r.relay_crash ? "" : " --no-relay-crash");
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
    << "  <testsuite name=\"" << runner::xml_escape(suite) << "\" tests=\"" << r.cases.size()
    << "\" failures=\"" << t.failed << "\">\n"
    << "    <properties><property name=\"first_seed\" value=\"" << r.first_seed
    << "\"/><property name=\"shard\" value=\"" << r.shard_index + 1 << "/" << r.shard_count
    << "\"/></properties>\n";
  for (const auto& c : r.cases) {
    o << "    <testcase classname=\"sweep\" name=\"sweep-" << c.seed << "\" time=\""
      << seconds_text(c.virtual_ns) << "\"";
    if (c.passed) {
      o << "/>\n";
      continue;
    }
    std::string text = c.summary + "\n";
    for (const auto& p : c.problems) text += p + "\n";
    text += "replay: " + replay_command(r, c.seed) + "\n";
    o << ">\n      <failure message=\""
      << runner::xml_escape(c.problems.empty() ? std::string("failed") : c.problems.front())
      << "\">" << runner::xml_escape(text) << "</failure>\n    </testcase>\n";
  }
  o << "  </testsuite>\n</testsuites>\n";
  return o.str();
}

std::optional<sweep_report> merge(const std::vector<sweep_report>& shards,
                                  const std::vector<std::string>& files, std::string& error) {
  if (shards.empty()) {
    error = "no shard reports";
    return std::nullopt;
  }
  const auto& first = shards.front();
  std::vector<std::string> by_index(first.shard_count);  // the file of each shard
  sweep_report out = first;
  out.shard_index = 0;
  out.shard_count = 1;
  out.cases.clear();
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const auto& s = shards[i];
    const std::string file = i < files.size() ? files[i] : "report " + std::to_string(i + 1);
    if (s.shard_count == 0 || s.shard_index >= s.shard_count) {
      error = file + ": shard index out of range";
      return std::nullopt;
    }
    if (s.first_seed != first.first_seed || s.count != first.count ||
        s.relay_crash != first.relay_crash || s.shard_count != first.shard_count) {
      error = file + ": not a shard of the same sweep as " +
              (files.empty() ? std::string("the first report") : files.front()) +
              " (first seed, count, --no-relay-crash and the number of shards must agree)";
      return std::nullopt;
    }
    if (!by_index[s.shard_index].empty()) {
      error = file + ": shard " + std::to_string(s.shard_index + 1) + "/" +
              std::to_string(s.shard_count) + " is also " + by_index[s.shard_index];
      return std::nullopt;
    }
    by_index[s.shard_index] = file;
    // The shard's range, as `relaylab sweep --shard` computes it.
    const runner::shard range{s.shard_index, s.shard_count, ""};
    const std::uint64_t lo = runner::shard_begin(range, s.count);
    const std::uint64_t hi = runner::shard_end(range, s.count);
    bool complete = s.cases.size() == hi - lo;
    for (std::size_t k = 0; complete && k < s.cases.size(); ++k)
      complete = s.cases[k].seed == s.first_seed + lo + k;
    if (!complete) {
      error = file + ": shard " + std::to_string(s.shard_index + 1) + "/" +
              std::to_string(s.shard_count) + " should hold the cases of seeds " +
              std::to_string(s.first_seed + lo) + ".." + std::to_string(s.first_seed + hi - 1) +
              " (" + std::to_string(hi - lo) + "), it holds " + std::to_string(s.cases.size());
      return std::nullopt;
    }
  }
  for (std::uint64_t k = 0; k < first.shard_count; ++k) {
    if (by_index[k].empty()) {
      error = "shard " + std::to_string(k + 1) + "/" + std::to_string(first.shard_count) +
              " is missing";
      return std::nullopt;
    }
  }
  std::vector<const sweep_report*> order;
  for (const auto& s : shards) order.push_back(&s);
  std::sort(order.begin(), order.end(), [](const sweep_report* a, const sweep_report* b) {
    return a->shard_index < b->shard_index;
  });
  for (const auto* s : order) out.cases.insert(out.cases.end(), s->cases.begin(), s->cases.end());
  return out;
}

}  // namespace relaylab::sweep
