// Reading sweep reports back: the one place in harness/sweep that uses nlohmann/json.
#include "harness/sweep/report.hpp"

#include <nlohmann/json.hpp>

namespace relaylab::sweep {

namespace {

using json = nlohmann::json;

// A field of `o` with the wanted type; throws a message naming it otherwise.
const json& field(const json& o, const char* name, json::value_t type, const std::string& where) {
  const auto it = o.find(name);
  const bool ok = it != o.end() &&
                  (it->type() == type ||
                   (type == json::value_t::number_unsigned &&
                    it->type() == json::value_t::number_integer && it->get<std::int64_t>() >= 0));
  if (!ok) {
    const char* what = type == json::value_t::boolean           ? "true or false"
                       : type == json::value_t::string          ? "a string"
                       : type == json::value_t::array           ? "an array"
                       : type == json::value_t::object          ? "an object"
                       : type == json::value_t::number_unsigned ? "a number >= 0"
                                                                : "a number";
    throw std::runtime_error(where + ": \"" + name + "\": expected " + what);
  }
  return *it;
}

}  // namespace

std::optional<sweep_report> read_json(std::string_view text, const std::string& file,
                                      std::string& error) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    error = file + ": not JSON: " + e.what();
    return std::nullopt;
  }
  try {
    if (!doc.is_object() || doc.value("relaylab", "") != "sweep-report")
      throw std::runtime_error("not a relaylab sweep report (\"relaylab\": \"sweep-report\")");
    if (doc.value("version", 0) != 1)
      throw std::runtime_error("\"version\": expected 1 (this relaylab reads version 1)");
    sweep_report r;
    using vt = json::value_t;
    r.first_seed = field(doc, "first_seed", vt::number_unsigned, "report").get<std::uint64_t>();
    r.count = field(doc, "count", vt::number_unsigned, "report").get<std::uint64_t>();
    r.relay_crash = field(doc, "relay_crash", vt::boolean, "report").get<bool>();
    const auto& sh = field(doc, "shard", vt::object, "report");
    const auto index = field(sh, "index", vt::number_unsigned, "shard").get<std::uint64_t>();
    r.shard_count = field(sh, "count", vt::number_unsigned, "shard").get<std::uint64_t>();
    if (r.shard_count < 1 || index < 1 || index > r.shard_count)
      throw std::runtime_error("\"shard\": expected 1 <= index <= count");
    r.shard_index = index - 1;
    const auto& cases = field(doc, "cases", vt::array, "report");
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const auto where = "case " + std::to_string(i + 1);
      const auto& c = cases[i];
      if (!c.is_object()) throw std::runtime_error(where + ": expected an object");
      case_row row;
      row.seed = field(c, "seed", vt::number_unsigned, where).get<std::uint64_t>();
      row.passed = field(c, "passed", vt::boolean, where).get<bool>();
      row.virtual_ns = field(c, "virtual_ns", vt::number_unsigned, where).get<std::int64_t>();
      row.events = field(c, "events", vt::number_unsigned, where).get<std::uint64_t>();
      if (!row.passed) {
        row.summary = field(c, "summary", vt::string, where).get<std::string>();
        for (const auto& p : field(c, "problems", vt::array, where)) {
          if (!p.is_string()) throw std::runtime_error(where + ": \"problems\": expected strings");
          row.problems.push_back(p.get<std::string>());
        }
      }
      r.cases.push_back(std::move(row));
    }
    return r;
  } catch (const std::exception& e) {
    error = file + ": " + e.what();
    return std::nullopt;
  }
}

}  // namespace relaylab::sweep
