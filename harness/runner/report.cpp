#include "harness/runner/report.hpp"

#include "relay/log/log.hpp"

#include <cstdio>
#include <sstream>

namespace relaylab::runner {
namespace {

std::string seconds(std::chrono::nanoseconds d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld.%03llds", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  return buf;
}

std::string json_escape(const std::string& s) { return log::json_quote(s); }

std::string replay(const report_input& in, const std::string& scenario) {
  return "relaylab run " + in.file + " --scenario " + scenario + " --seed " +
         std::to_string(in.seed);
}

}  // namespace

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string text_header(const report_input& in) {
  std::ostringstream o;
  o << "relaylab run " << in.file << "\n"
    << "seed = " << in.seed << "\n"
    << "scenario = " << (in.options.scenario.empty() ? "(all)" : in.options.scenario) << "\n"
    << "shard = " << in.options.shard_index + 1 << "/" << in.options.shard_count << "\n"
    << "verbose = " << (in.options.verbose ? "yes" : "no") << "\n";
  return o.str();
}

std::string text_scenario(const report_input& in, std::size_t index) {
  const auto& r = in.results[index];
  std::ostringstream o;
  o << (r.passed ? "PASS " : "FAIL ") << r.name << "  virtual=" << seconds(r.virtual_time);
  if (index < in.wall_ms.size()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0fms", in.wall_ms[index]);
    o << "  wall=" << buf;
  }
  o << "\n";
  for (const auto& f : r.failures) {
    o << "  " << f.where.to_string() << ": expected " << f.expected << "\n"
      << "    got: " << f.got << "\n";
  }
  if (!r.passed) o << "  replay: " << replay(in, r.name) << "\n";
  if (in.options.verbose) {
    for (const auto& l : r.transcript) o << "  | " << l << "\n";
    for (const auto& l : r.maillog) o << "  > " << l << "\n";
  }
  return o.str();
}

std::string text_summary(const report_input& in) {
  std::size_t passed = 0;
  for (const auto& r : in.results) passed += r.passed ? 1 : 0;
  return std::to_string(passed) + " passed, " + std::to_string(in.results.size() - passed) +
         " failed (seed " + std::to_string(in.seed) + ")\n";
}

std::string junit_xml(const report_input& in) {
  std::size_t failed = 0;
  for (const auto& r : in.results) failed += r.passed ? 0 : 1;
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<testsuites>\n"
    << "  <testsuite name=\"" << xml_escape(in.file) << "\" tests=\"" << in.results.size()
    << "\" failures=\"" << failed << "\">\n"
    << "    <properties><property name=\"seed\" value=\"" << in.seed << "\"/></properties>\n";
  for (const auto& r : in.results) {
    o << "    <testcase classname=\"" << xml_escape(in.file) << "\" name=\"" << xml_escape(r.name)
      << "\" time=\"" << seconds(r.virtual_time).substr(0, seconds(r.virtual_time).size() - 1)
      << "\">\n";
    if (!r.passed) {
      std::string text;
      for (const auto& f : r.failures) {
        text += f.where.to_string() + ": expected " + f.expected + "\n  got: " + f.got + "\n";
      }
      text += "replay: " + replay(in, r.name) + "\n";
      o << "      <failure message=\""
        << xml_escape(r.failures.empty() ? "failed" : r.failures[0].expected) << "\">"
        << xml_escape(text) << "</failure>\n";
    }
    o << "    </testcase>\n";
  }
  o << "  </testsuite>\n</testsuites>\n";
  return o.str();
}

std::string json(const report_input& in) {
  std::ostringstream o;
  o << "{\"file\":" << json_escape(in.file) << ",\"seed\":" << in.seed << ",\"scenarios\":[";
  for (std::size_t i = 0; i < in.results.size(); ++i) {
    const auto& r = in.results[i];
    if (i) o << ",";
    o << "{\"name\":" << json_escape(r.name) << ",\"passed\":" << (r.passed ? "true" : "false")
      << ",\"virtual_ms\":"
      << std::chrono::duration_cast<std::chrono::milliseconds>(r.virtual_time).count()
      << ",\"events\":" << r.events << ",\"replay\":" << json_escape(replay(in, r.name))
      << ",\"failures\":[";
    for (std::size_t k = 0; k < r.failures.size(); ++k) {
      const auto& f = r.failures[k];
      if (k) o << ",";
      o << "{\"where\":" << json_escape(f.where.to_string())
        << ",\"expected\":" << json_escape(f.expected) << ",\"got\":" << json_escape(f.got) << "}";
    }
    o << "],\"maillog\":[";
    for (std::size_t k = 0; k < r.maillog.size(); ++k) {
      if (k) o << ",";
      o << json_escape(r.maillog[k]);
    }
    o << "]}";
  }
  o << "]}\n";
  return o.str();
}

std::string maillog(const report_input& in) {
  std::string out;
  for (const auto& r : in.results) {
    out += "# scenario " + r.name + "\n";
    for (const auto& l : r.maillog) out += l + "\n";
  }
  return out;
}

}  // namespace relaylab::runner
