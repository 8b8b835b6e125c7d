// JSON templates through nlohmann/json's SAX parser (this folder's only user of it). The SAX
// events carry no positions, so the parser reads through an iterator that records how far it
// has read; each event's value is found backwards from there in the text.
#include "harness/cfn/syntax/node.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iterator>
#include <set>

namespace relaylab::cfn::detail {

namespace {

// Remembers the offset of the last character the parser took.
struct counting_iterator {
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;
  const char* p = nullptr;
  const char* base = nullptr;
  std::size_t* last = nullptr;
  reference operator*() const {
    *last = static_cast<std::size_t>(p - base);
    return *p;
  }
  counting_iterator& operator++() {
    ++p;
    return *this;
  }
  counting_iterator operator++(int) {
    auto old = *this;
    ++p;
    return old;
  }
  bool operator==(const counting_iterator& o) const { return p == o.p; }
};

class builder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  builder(std::string_view text, const std::string& file, std::vector<diagnostic>& errors)
      : text_(text), file_(file), errors_(errors) {
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') line_starts_.push_back(i + 1);
    }
  }
  std::size_t last_ = 0;  // written by counting_iterator
  std::optional<node> root_;

  bool null() override { return add(node{}, last_ + 1 - 4); }
  bool boolean(bool v) override {
    return add(node::scalar(v ? "true" : "false", {}), last_ + 1 - (v ? 4 : 5));
  }
  bool number_integer(number_integer_t) override { return number(); }
  bool number_unsigned(number_unsigned_t) override { return number(); }
  bool number_float(number_float_t, const string_t&) override { return number(); }
  bool string(string_t& s) override {
    node n = node::scalar(s, {});
    n.quoted = true;
    return add(std::move(n), string_start());
  }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override {
    node n;
    n.type = node::kind::mapping;
    return open(std::move(n));
  }
  bool key(string_t& k) override {
    auto& m = *open_.back();
    const auto where = at(string_start());
    if (!keys_.back().insert(k).second) {
      errors_.push_back({where, "duplicate key '" + k + "'"});
      return false;
    }
    m.entries.push_back({k, where, node{}});
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override {
    node n;
    n.type = node::kind::sequence;
    return open(std::move(n));
  }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t offset, const std::string&,
                   const nlohmann::detail::exception& e) override {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error ..."
    if (const auto k = what.find(": syntax error"); k != std::string::npos) {
      what = what.substr(k + 2);
    }
    errors_.push_back({at(offset > 0 ? offset - 1 : 0), "JSON " + what});
    return false;
  }

 private:
  position at(std::size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset) - 1;
    position p{file_, static_cast<std::size_t>(it - line_starts_.begin()) + 1, 1};
    for (std::size_t i = *it; i < offset && i < text_.size(); ++i) {
      if ((static_cast<unsigned char>(text_[i]) & 0xc0) != 0x80) ++p.column;
    }
    return p;
  }
  // The parser has just taken the closing quote: the opening one is the first quote before it
  // that no backslash escapes.
  std::size_t string_start() const {
    for (std::size_t j = last_; j-- > 0;) {
      if (text_[j] != '"') continue;
      std::size_t slashes = 0;
      while (j > slashes && text_[j - slashes - 1] == '\\') ++slashes;
      if (slashes % 2 == 0) return j;
    }
    return 0;
  }
  // The parser has read one character past the number (or stopped at the end).
  bool number() {
    auto is_num = [](char c) {
      return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
    };
    std::size_t end = last_;
    if (end < text_.size() && is_num(text_[end])) ++end;
    std::size_t start = end;
    while (start > 0 && is_num(text_[start - 1])) --start;
    return add(node::scalar(std::string(text_.substr(start, end - start)), {}), start);
  }
  bool add(node n, std::size_t offset) {
    n.where = at(offset);
    if (open_.size() > nesting_max) return too_deep(n.where);
    if (open_.empty()) {
      root_ = std::move(n);
      return true;
    }
    auto& c = *open_.back();
    if (c.is_sequence()) {
      c.items.push_back(std::move(n));
    } else {
      c.entries.back().value = std::move(n);
    }
    return true;
  }
  bool open(node n) {
    if (!add(std::move(n), last_)) return false;
    node* placed = nullptr;
    if (open_.empty()) {
      placed = &*root_;
    } else {
      auto& c = *open_.back();
      placed = c.is_sequence() ? &c.items.back() : &c.entries.back().value;
    }
    open_.push_back(placed);
    keys_.emplace_back();
    return true;
  }
  bool close() {
    open_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool too_deep(const position& where) {
    errors_.push_back({where, "nested deeper than " + std::to_string(nesting_max) + " levels"});
    return false;
  }

  std::string_view text_;
  const std::string& file_;
  std::vector<diagnostic>& errors_;
  std::vector<std::size_t> line_starts_;
  std::vector<node*> open_;  // containers being filled (pointers stay valid: only the
                             // innermost one grows)
  std::vector<std::set<std::string>> keys_;
};

}  // namespace

std::optional<node> parse_json(std::string_view text, const std::string& file,
                               std::vector<diagnostic>& errors) {
  const std::size_t before = errors.size();
  builder b(text, file, errors);
  counting_iterator first{text.data(), text.data(), &b.last_};
  counting_iterator last{text.data() + text.size(), text.data(), &b.last_};
  const bool ok = nlohmann::json::sax_parse(first, last, &b);
  if (!ok || errors.size() != before || !b.root_) {
    if (errors.size() == before) errors.push_back({{file, 1, 1}, "JSON: cannot be read"});
    return std::nullopt;
  }
  if (!b.root_->is_mapping()) {
    errors.push_back({b.root_->where, "a template is a JSON object"});
    return std::nullopt;
  }
  return b.root_;
}

}  // namespace relaylab::cfn::detail
