// The template tree: positions, lookups, and choosing the parser by the first character.
#include "harness/cfn/syntax/node.hpp"

#include <filesystem>
#include <fstream>

namespace relaylab::cfn {

std::string position::to_string() const {
  return (file.empty() ? std::string("?") : file) + ":" + std::to_string(line) + ":" +
         std::to_string(column);
}

std::string diagnostic::to_string() const { return where.to_string() + ": error: " + message; }

const entry* node::find_entry(std::string_view key) const {
  for (const auto& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

const node* node::find(std::string_view key) const {
  const auto* e = find_entry(key);
  return e ? &e->value : nullptr;
}

node node::scalar(std::string v, position at) {
  node n;
  n.type = kind::scalar;
  n.value = std::move(v);
  n.where = std::move(at);
  return n;
}

node node::sequence(std::vector<node> v, position at) {
  node n;
  n.type = kind::sequence;
  n.items = std::move(v);
  n.where = std::move(at);
  return n;
}

namespace detail {

position at_offset(std::string_view text, std::size_t offset, const std::string& file) {
  position p{file, 1, 1};
  const auto end = std::min(offset, text.size());
  for (std::size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
      ++p.column;
    }
  }
  return p;
}

}  // namespace detail

std::optional<node> parse_template(std::string_view text, const std::string& file,
                                   std::vector<diagnostic>& errors) {
  const std::string& name = file;
  if (text.size() > template_bytes_max) {
    errors.push_back({{name, 1, 1},
                      "the template is larger than " + std::to_string(template_bytes_max) +
                          " bytes (CloudFormation's limit)"});
    return std::nullopt;
  }
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    return detail::parse_json(text, name, errors);
  }
  return detail::parse_yaml(text, name, errors);
}

std::optional<node> read_template(const std::string& path, std::vector<diagnostic>& errors) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  std::string text;
  if (!ec && size <= template_bytes_max) {
    std::ifstream in(path, std::ios::binary);
    if (in) text.assign(std::istreambuf_iterator<char>(in), {});
    if (!in && !in.eof()) ec = std::make_error_code(std::errc::io_error);
  }
  if (ec) {
    errors.push_back({{path, 1, 1}, "cannot read the template: " + ec.message()});
    return std::nullopt;
  }
  if (size > template_bytes_max) text.resize(template_bytes_max + 1);
  return parse_template(text, path, errors);
}

}  // namespace relaylab::cfn
