// main.cf syntax, as Postfix's readlline() and split_nameval() read it.
#include <algorithm>
#include <cctype>

#include "relay/config/config.hpp"
#include "relay/config/text.hpp"

namespace relaylab::config {

std::string diagnostic::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  if (!out.empty()) out += ": ";
  out += level == severity::fatal ? "fatal: " : "warning: ";
  out += message;
  return out;
}

namespace {
std::string excerpt(std::string_view s) {
  constexpr std::size_t excerpt_bytes_max = 80;
  std::string out = "\"" + printable(s.substr(0, excerpt_bytes_max));
  if (s.size() > excerpt_bytes_max) out += "...";
  return out + "\"";
}
}  // namespace

void parse_main_cf(std::string_view text, const std::string& file, parameters& into,
                   std::vector<diagnostic>& diags) {
  auto warn = [&](int line, std::string parameter, std::string message) {
    diags.push_back(
        {diagnostic::severity::warning, file, line, std::move(parameter), std::move(message)});
  };
  auto lines = logical_lines(text, [&](int line, std::string_view phys) {
    warn(line, "",
         "logical line must not start with whitespace: " + excerpt(phys) +
             " (a continuation line needs a \"name = value\" line before it)");
  });
  for (const auto& l : lines) {
    if (l.has_nul) {
      warn(l.line, "", "NUL byte in line; the text after it is ignored, as Postfix does");
    }
    // split_nameval(): name up to whitespace or '=', then '=', then the trimmed value.
    std::string_view s = trim(l.text);
    std::size_t name_end = 0;
    while (name_end < s.size() && s[name_end] != '=' &&
           !std::isspace(static_cast<unsigned char>(s[name_end]))) {
      ++name_end;
    }
    std::string_view name = s.substr(0, name_end);
    std::string_view rest = trim(s.substr(name_end));
    diagnostic d{diagnostic::severity::fatal, file, l.line, std::string(name), {}};
    if (s.empty()) continue;  // only a NUL-truncated line can be empty here
    if (name.empty()) {
      d.message = "missing attribute name: " + excerpt(s) + " (expected \"name = value\")";
      diags.push_back(std::move(d));
      continue;
    }
    if (rest.empty() || rest.front() != '=') {
      d.message =
          "missing '=' after attribute name: " + excerpt(s) + " (expected \"name = value\")";
      diags.push_back(std::move(d));
      continue;
    }
    std::string value(trim(rest.substr(1)));
    if (into.is_set(name)) {
      if (auto o = into.origin_of(name); o && o->file == file) {
        warn(l.line, std::string(name),
             "overriding earlier entry: " + std::string(name) + "=" +
                 printable(into.raw(name).value_or("")) + " (from line " + std::to_string(o->line) +
                 ")");
      }
    }
    into.set(std::string(name), std::move(value), parameters::origin{file, l.line});
  }
}

}  // namespace relaylab::config
