// RFC 822 address extraction as Postfix's tok822 does it (see rfc822_address.hpp).
//
// The parser works like Postfix's: the tokens form a doubly linked list between two sentinels,
// and one pass from right to left groups the tokens of each address under an address node,
// inserting the comma that a missing separator implies. What is not understood stays in the
// list as it is, so counting the address nodes afterwards tells whether there was exactly one.
#include "relay/smtp/rfc822_address.hpp"

#include <cstring>
#include <vector>

namespace relaylab::smtp::rfc822 {
namespace {

// Token types: a single-character operator is its own character; the others are above 255.
enum : int {
  sentinel = 0,
  atom = 256,
  quoted_string,
  domain_literal,
  comment,
  address,
  start_group,
};

constexpr std::string_view operators = "|%!()<>@,;:\\\".[]";

bool is_operator(unsigned char c) {
  return c != 0 && operators.find(static_cast<char>(c)) != std::string_view::npos;
}
bool is_white(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_control(unsigned char c) { return c < 32 || c == 127; }

constexpr int none = -1;

struct node {
  int type = sentinel;
  std::string text;
  int prev = none, next = none;
  int head = none, tail = none;  // children of an address node
  int owner = none;
};

class token_list {
 public:
  int make(int type) {
    nodes_.push_back(node{});
    nodes_.back().type = type;
    return static_cast<int>(nodes_.size()) - 1;
  }
  node& operator[](int i) { return nodes_[static_cast<std::size_t>(i)]; }

  void link(int left, int right) {
    (*this)[left].next = right;
    (*this)[right].prev = left;
  }
  /// Inserts `t` after `at`, with `at`'s owner.
  void insert_after(int at, int t) {
    const int after = (*this)[at].next;
    link(at, t);
    (*this)[t].owner = (*this)[at].owner;
    (*this)[t].next = after;
    if (after != none) (*this)[after].prev = t;
  }
  /// Takes `t` out of its list and puts it before `at`; returns `t`'s old predecessor.
  int move_before(int t, int at) {
    const int old_prev = (*this)[t].prev;
    const int old_next = (*this)[t].next;
    if (old_prev != none) (*this)[old_prev].next = old_next;
    if (old_next != none) (*this)[old_next].prev = old_prev;
    const int before = (*this)[at].prev;
    if (before != none) (*this)[before].next = t;
    (*this)[t].prev = before;
    (*this)[t].next = at;
    (*this)[t].owner = (*this)[at].owner;
    (*this)[at].prev = t;
    return old_prev;
  }
  /// The tokens strictly between `left` and `right` become the children of a new node of
  /// `type` in their place; `comma` inserts a ',' right after `left` too. Returns `left`.
  int group(int type, int left, int right, bool comma) {
    const int first = (*this)[left].next;
    if (left == right || first == right) return left;
    const int last = (*this)[right].prev;
    const int g = make(type);
    (*this)[g].head = first;
    (*this)[g].tail = last;
    (*this)[first].prev = none;
    (*this)[last].next = none;
    for (int t = first; t != none; t = (*this)[t].next) (*this)[t].owner = g;
    (*this)[g].owner = (*this)[left].owner;
    link(left, g);
    link(g, right);
    if (comma) insert_after(left, make(','));
    return left;
  }

 private:
  std::vector<node> nodes_;
};

// Characters up to one for which `more` is false, a backslash taking the next one literally;
// tab, CR and LF read as a space. Returns the position after the last character taken.
template <class Pred>
std::size_t collect(std::string_view s, std::size_t i, std::string& out, Pred more) {
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (++i >= s.size()) break;
      c = static_cast<unsigned char>(s[i]);
    } else if (!more(c)) {
      break;
    }
    out += is_white(c) ? ' ' : static_cast<char>(c);
    ++i;
  }
  return i;
}

// A comment, kept in external form: nested parentheses, backslash pairs as they are.
std::size_t collect_comment(std::string_view s, std::size_t i, std::string& out) {
  int level = 1;
  out += '(';
  while (i < s.size()) {
    const char c = s[i++];
    out += c;
    if (c == '(') {
      ++level;
    } else if (c == ')') {
      if (--level == 0) break;
    } else if (c == '\\') {
      if (i >= s.size()) break;
      out += s[i++];
    }
  }
  return i;
}

// Tokenizes `s` into `l` between the two sentinels.
void scan(std::string_view s, token_list& l, int head, int tail) {
  int last = head;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (is_white(c)) {
      ++i;
      continue;
    }
    int t;
    if (c == '(') {
      t = l.make(comment);
      i = collect_comment(s, i + 1, l[t].text);
    } else if (c == '[' || c == '"') {
      t = l.make(c == '[' ? domain_literal : quoted_string);
      const unsigned char close = c == '[' ? ']' : '"';
      i = collect(s, i + 1, l[t].text, [close](unsigned char x) { return x != close; });
      if (i < s.size()) ++i;  // the closing character
    } else if (c != '\\' && is_operator(c)) {
      t = l.make(c);
      ++i;
    } else {
      t = l.make(atom);
      i = collect(s, i, l[t].text, [](unsigned char x) { return !is_white(x) && !is_operator(x); });
      // An atom with a space, a control character or a special in it (all through
      // backslashes) is a quoted string: quote_822_local will quote it on the way out.
      for (const char x : l[t].text) {
        const auto u = static_cast<unsigned char>(x);
        if (u == ' ' || is_control(u) || is_operator(u)) {
          l[t].type = quoted_string;
          break;
        }
      }
    }
    l.link(last, t);
    last = t;
  }
  l.link(last, tail);
}

bool is_word(int type) { return type == atom || type == quoted_string || type == domain_literal; }

// The right-to-left pass of Postfix's tok822_parse().
void parse(token_list& l, int tail) {
  constexpr int do_word = 1, do_group = 2;
  int state = do_word;
  int right = tail;
  int tp = l[tail].prev;
  // A comment goes to the side: just before `right`, which it becomes.
  auto move_comment = [&] {
    const int before = l.move_before(tp, right);
    right = tp;
    tp = before;
  };
  while (l[tp].type != sentinel) {
    const int type = l[tp].type;
    if (type == comment) {
      move_comment();
      continue;
    }
    if (type == ';') {
      right = l.group(address, tp, right, true);
      state = do_group | do_word;
    } else if (type == ':' && (state & do_group) != 0) {
      l[tp].type = start_group;
      l.group(address, tp, right, false);
      while (l[tp].type != sentinel && l[tp].type != ',') tp = l[tp].prev;
      right = tp;
      continue;
    } else if (type == '>') {
      right = l.group(address, tp, right, true);
      while (l[tp].type != sentinel && l[tp].type != '<') {
        if (l[tp].type == comment) {
          move_comment();
          continue;
        }
        tp = l[tp].prev;
      }
      l.group(address, tp, right, false);
      auto stops = [](int t) { return t <= 0xff && std::strchr(">;,:", t) != nullptr; };
      while (l[tp].type != sentinel && !stops(l[tp].type)) tp = l[tp].prev;
      right = tp;
      state |= do_word;
      continue;
    } else if (is_word(type)) {
      if ((state & do_word) == 0) right = l[l.group(address, tp, right, true)].next;
      state &= ~do_word;
    } else if (type == ',') {
      right = l.group(address, tp, right, false);
      state |= do_word;
    } else {
      state |= do_word;
    }
    tp = l[tp].prev;
  }
  l.group(address, tp, right, false);
}

// tok822_internalize() of an address node's children: no spaces inside an address.
void internalize(token_list& l, int first, std::string& out) {
  for (int t = first; t != none; t = l[t].next) {
    const int type = l[t].type;
    if (type == address) {
      internalize(l, l[t].head, out);
    } else if (type == atom || type == quoted_string || type == comment) {
      out += l[t].text;
    } else if (type == domain_literal) {
      out += '[' + l[t].text + ']';
    } else if (type == start_group) {
      out += ':';
    } else {
      out += static_cast<char>(type);
    }
  }
}

}  // namespace

extraction extract(std::string_view argument) {
  std::string_view text = argument;
  if (text.size() >= 2 && text.front() == '<' && text.back() == '>')
    text = text.substr(1, text.size() - 2);
  if (!text.empty() && text.front() == '@') {
    if (const auto colon = text.find(':'); colon != std::string_view::npos)
      text = text.substr(colon + 1);
  }
  token_list l;
  const int head = l.make(sentinel);
  const int tail = l.make(sentinel);
  scan(text, l, head, tail);
  parse(l, tail);
  extraction out;
  int last_address = none;
  for (int t = l[head].next; t != tail; t = l[t].next) {
    const int type = l[t].type;
    if (type == address) {
      ++out.addresses;
      last_address = t;
    } else if (type != '<' && type != '>') {
      ++out.others;
    }
  }
  if (last_address != none) internalize(l, l[last_address].head, out.address);
  return out;
}

bool local_part_needs_quotes(std::string_view local) {
  if (local.empty() || local.front() == '.' || local.back() == '.') return true;
  for (std::size_t i = 0; i < local.size(); ++i) {
    const auto c = static_cast<unsigned char>(local[i]);
    if (c == '.' && i + 1 < local.size() && local[i + 1] == '.') return true;
    if (c == ' ' || is_control(c)) return true;
    if (c != '.' && c != '%' && c != '!' && c != '|' && is_operator(c)) return true;
  }
  return false;
}

std::string externalize(std::string_view internal) {
  if (internal.empty()) return {};  // the null sender
  std::string_view route;
  std::string_view rest = internal;
  if (!rest.empty() && rest.front() == '@') {
    if (const auto colon = rest.find(':'); colon != std::string_view::npos) {
      route = rest.substr(0, colon + 1);
      rest = rest.substr(colon + 1);
    }
  }
  const auto at = rest.rfind('@');
  const std::string_view local = rest.substr(0, at);
  const std::string_view domain = at == std::string_view::npos ? "" : rest.substr(at);
  if (!local_part_needs_quotes(local)) return std::string(internal);
  std::string out(route);
  out += '"';
  for (const char c : local) {
    if (c == '"' || c == '\\' || c == '\r') out += '\\';
    out += c;
  }
  out += '"';
  out += domain;
  return out;
}

}  // namespace relaylab::smtp::rfc822
