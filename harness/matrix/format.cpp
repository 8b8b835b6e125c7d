// The matrix as text (aligned columns, colour on a terminal), Markdown, CSV, JSON and one HTML
// page with a filter per column; --fold groups a listener's cells that decide alike.
#include "harness/matrix/matrix.hpp"

#include "relay/log/log.hpp"

#include <algorithm>
#include <regex>
#include <set>

namespace relaylab::matrix {
namespace {

const std::vector<std::string> columns{"listener",  "client", "auth",  "sender",
                                       "recipient", "stage",  "reply", "decided by"};

struct row {
  std::vector<std::string> fields;  // as `columns`
  int code = 0;
  std::size_t cells = 1;
  std::string mark;  // highlight kinds, "" for none
};

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::map<std::string, std::string> marks_by_key(const table& t, bool on) {
  std::map<std::string, std::string> out;
  if (!on) return out;
  for (const auto& f : highlight(t)) {
    auto& m = out[f.key];
    if (m.find(f.kind) == std::string::npos) m += (m.empty() ? "" : ",") + f.kind;
  }
  return out;
}

std::vector<row> rows_of(const table& t, const format_options& o) {
  auto marks = marks_by_key(t, o.highlight);
  std::vector<row> rows;
  for (const auto& c : t.cells) {
    const auto& d = c.decisive();
    row r;
    r.fields = {c.listener,  c.client, c.auth,  c.sender,
                c.recipient, d.stage,  d.reply, c.decided_by()};
    r.code = reply_code(d.reply);
    if (auto it = marks.find(c.key()); it != marks.end()) r.mark = it->second;
    rows.push_back(std::move(r));
  }
  return rows;
}

/// Groups a listener's rows that have the same stage, reply (addresses elided) and decider;
/// an axis that takes every value in the group's listener prints as "*".
std::vector<row> fold(const table& t, const std::vector<row>& rows) {
  static const std::regex address("<[^>]*>");
  std::map<std::string, std::set<std::string>> all;  // listener|axis -> values
  for (const auto& r : rows)
    for (std::size_t i = 1; i <= 4; ++i)
      all[r.fields[0] + "|" + std::to_string(i)].insert(r.fields[i]);
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::set<std::string>>> groups;
  std::map<std::string, row> first;
  for (const auto& r : rows) {
    std::string reply = std::regex_replace(normalize_reply(r.fields[6]), address, "<…>");
    std::string key = r.fields[0] + "\x1f" + r.fields[5] + "\x1f" + reply + "\x1f" + r.fields[7] +
                      "\x1f" + r.mark;
    auto [it, fresh] = groups.try_emplace(key, std::vector<std::set<std::string>>(5));
    if (fresh) {
      order.push_back(key);
      first[key] = r;
      first[key].fields[6] = reply;
      first[key].cells = 0;
    }
    for (std::size_t i = 1; i <= 4; ++i) it->second[i].insert(r.fields[i]);
    ++first[key].cells;
  }
  (void)t;
  std::vector<row> out;
  for (const auto& key : order) {
    row r = first[key];
    for (std::size_t i = 1; i <= 4; ++i) {
      const auto& vals = groups[key][i];
      r.fields[i] = vals == all[r.fields[0] + "|" + std::to_string(i)]
                        ? std::string("*")
                        : join(std::vector<std::string>(vals.begin(), vals.end()), ",");
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string colour_of(const row& r) {
  if (!r.mark.empty()) return "\x1b[1;35m";
  if (r.code / 100 == 5) return "\x1b[31m";
  if (r.code / 100 == 4) return "\x1b[33m";
  return "\x1b[32m";
}

std::vector<std::string> header(const format_options& o) {
  auto h = columns;
  if (o.fold) h.insert(h.begin(), "cells");
  if (o.highlight) h.push_back("highlight");
  return h;
}

std::vector<std::string> fields(const row& r, const format_options& o) {
  auto f = r.fields;
  if (o.fold) f.insert(f.begin(), std::to_string(r.cells));
  if (o.highlight) f.push_back(r.mark);
  return f;
}

using grid = std::vector<std::vector<std::string>>;

/// Aligned columns; `colours[i]` (may be "") wraps row i.
std::string aligned(const std::vector<std::string>& h, const grid& g,
                    const std::vector<std::string>& colours) {
  std::vector<std::size_t> width(h.size());
  for (std::size_t i = 0; i < h.size(); ++i) width[i] = h[i].size();
  for (const auto& f : g)
    for (std::size_t i = 0; i < f.size(); ++i) width[i] = std::max(width[i], f[i].size());
  auto line = [&](const std::vector<std::string>& f) {
    std::string out;
    for (std::size_t i = 0; i < f.size(); ++i) {
      out += f[i];
      if (i + 1 < f.size()) out += std::string(width[i] - f[i].size() + 2, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  };
  std::string out = line(h) + "\n";
  for (std::size_t r = 0; r < g.size(); ++r) {
    const bool c = r < colours.size() && !colours[r].empty();
    out += (c ? colours[r] : "") + line(g[r]) + (c ? "\x1b[0m" : "") + "\n";
  }
  return out;
}

std::string markdown_cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out.empty() ? " " : out;
}

std::string markdown(const std::vector<std::string>& h, const grid& g) {
  std::string out = "|";
  for (const auto& c : h) out += " " + c + " |";
  out += "\n|";
  for (std::size_t i = 0; i < h.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& f : g) {
    out += "|";
    for (const auto& x : f) out += " " + markdown_cell(x) + " |";
    out += "\n";
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_line(const std::vector<std::string>& f) {
  std::string line;
  for (std::size_t i = 0; i < f.size(); ++i) line += (i ? "," : "") + csv_field(f[i]);
  return line + "\n";
}

std::string csv(const std::vector<std::string>& h, const grid& g) {
  std::string out = csv_line(h);
  for (const auto& f : g) out += csv_line(f);
  return out;
}

std::string csv(const table& t, const std::vector<row>& rows, const format_options& o) {
  if (o.fold) {
    grid g;
    for (const auto& r : rows) g.push_back(fields(r, o));
    return csv(header(o), g);
  }
  // One line per cell, every stage's reply and decider.
  static const char* stages[] = {"connect", "helo", "auth", "mail", "rcpt", "data", "eod"};
  std::string out =
      "listener,client,client_addr,auth,sender,sender_addr,recipient,recipient_addr,outcome";
  for (const char* s : stages) out += std::string(",") + s + "," + s + "_decider";
  if (o.highlight) out += ",highlight";
  out += "\n";
  auto marks = marks_by_key(t, o.highlight);
  for (const auto& c : t.cells) {
    std::vector<std::string> f{
        c.listener,  c.client,         c.client_addr,
        c.auth,      c.sender,         c.sender_addr,
        c.recipient, c.recipient_addr, c.accepted() ? "accepted" : "refused"};
    for (const char* s : stages) {
      auto it = std::find_if(c.stages.begin(), c.stages.end(),
                             [&](const stage_result& r) { return r.stage == s; });
      f.push_back(it == c.stages.end() ? "" : it->reply);
      f.push_back(it == c.stages.end() ? "" : it->decider);
    }
    if (o.highlight) f.push_back(marks[c.key()]);
    out += csv_line(f);
  }
  (void)rows;
  return out;
}

std::string json(const table& t, const format_options& o) {
  using log::json_quote;
  std::string out = "{\"config_dir\":" + json_quote(t.config_dir) + ",\"notes\":[";
  for (std::size_t i = 0; i < t.notes.size(); ++i) out += (i ? "," : "") + json_quote(t.notes[i]);
  out += "],\"cells\":[";
  for (std::size_t i = 0; i < t.cells.size(); ++i) {
    const auto& c = t.cells[i];
    out += std::string(i ? ",\n" : "\n") + "{\"listener\":" + json_quote(c.listener) +
           ",\"client\":" + json_quote(c.client) + ",\"client_addr\":" + json_quote(c.client_addr) +
           ",\"auth\":" + json_quote(c.auth) + ",\"sender\":" + json_quote(c.sender) +
           ",\"sender_addr\":" + json_quote(c.sender_addr) +
           ",\"recipient\":" + json_quote(c.recipient) +
           ",\"recipient_addr\":" + json_quote(c.recipient_addr) +
           ",\"auth_offered\":" + (c.auth_offered ? "true" : "false") +
           ",\"authenticated\":" + (c.authenticated ? "true" : "false") +
           ",\"accepted\":" + (c.accepted() ? "true" : "false") + ",\"stages\":[";
    for (std::size_t j = 0; j < c.stages.size(); ++j) {
      const auto& s = c.stages[j];
      out += std::string(j ? "," : "") + "{\"stage\":" + json_quote(s.stage) +
             ",\"reply\":" + json_quote(s.reply) + ",\"decider\":" + json_quote(s.decider) + "}";
    }
    out += "]}";
  }
  out += "\n]";
  if (o.highlight) {
    out += ",\"findings\":[";
    auto f = highlight(t);
    for (std::size_t i = 0; i < f.size(); ++i)
      out += std::string(i ? ",\n" : "\n") + "{\"kind\":" + json_quote(f[i].kind) +
             ",\"cell\":" + json_quote(f[i].key) + ",\"text\":" + json_quote(f[i].text) + "}";
    out += "\n]";
  }
  return out + "}\n";
}

std::string html_escape(const std::string& s) {
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
        out += c;
    }
  }
  return out;
}

std::string html(const table& t, const std::vector<row>& rows, const format_options& o) {
  auto h = header(o);
  std::string out =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>relaylab matrix: " +
      html_escape(t.config_dir) +
      "</title>\n<style>body{font-family:sans-serif}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}tr.c5{background:#fdd}"
      "tr.c4{background:#ffd}tr.c2{background:#dfd}tr.hl{outline:2px solid #a0a}"
      "input{width:100%;box-sizing:border-box}</style></head><body>\n<h1>relaylab "
      "matrix</h1>\n<p>" +
      html_escape(t.config_dir) + "</p>\n";
  for (const auto& n : t.notes) out += "<p>" + html_escape(n) + "</p>\n";
  if (o.highlight) {
    out += "<ul>\n";
    for (const auto& f : highlight(t))
      out += "<li><b>" + html_escape(f.kind) + "</b> " + html_escape(f.text) + "</li>\n";
    out += "</ul>\n";
  }
  out += "<table id=\"m\"><thead><tr>";
  for (const auto& c : h) out += "<th>" + html_escape(c) + "</th>";
  out += "</tr><tr>";
  for (std::size_t i = 0; i < h.size(); ++i)
    out += "<th><input data-col=\"" + std::to_string(i) + "\" placeholder=\"filter\"></th>";
  out += "</tr></thead><tbody>\n";
  for (const auto& r : rows) {
    out += "<tr class=\"c" + std::to_string(r.code / 100) + (r.mark.empty() ? "" : " hl") + "\">";
    for (const auto& f : fields(r, o)) out += "<td>" + html_escape(f) + "</td>";
    out += "</tr>\n";
  }
  out +=
      "</tbody></table>\n<script>\nconst inputs=[...document.querySelectorAll('#m input')];\n"
      "inputs.forEach(i=>i.addEventListener('input',()=>{\n"
      "  for(const tr of document.querySelectorAll('#m tbody tr')){\n"
      "    tr.style.display=inputs.every(f=>!f.value||tr.cells[+f.dataset.col].textContent"
      ".toLowerCase().includes(f.value.toLowerCase()))?'':'none';}}));\n</script>\n"
      "</body></html>\n";
  return out;
}

}  // namespace

std::string render(const table& t, const format_options& o) {
  auto rows = rows_of(t, o);
  if (o.fold) rows = fold(t, rows);
  grid g;
  std::vector<std::string> colours;
  for (const auto& r : rows) {
    g.push_back(fields(r, o));
    colours.push_back(o.colour ? colour_of(r) : "");
  }
  std::string out;
  switch (o.what) {
    case format::text:
      out = aligned(header(o), g, colours);
      break;
    case format::markdown:
      out = markdown(header(o), g);
      break;
    case format::csv:
      return csv(t, rows, o);
    case format::json:
      return json(t, o);
    case format::html:
      return html(t, rows, o);
  }
  for (const auto& n : t.notes) out += "note: " + n + "\n";
  if (o.highlight) {
    std::set<std::string> said;  // cells that differ only by sender read as one line
    for (const auto& f : highlight(t))
      if (said.insert(f.kind + f.text).second) out += "highlight: " + f.kind + ": " + f.text + "\n";
  }
  return out;
}

/// `c`'s stage at the first position where `a` and `b` differ (its last stage if none).
static const stage_result& first_differing(const cell& c, const cell& a, const cell& b) {
  for (std::size_t i = 0; i < c.stages.size(); ++i) {
    if (i >= a.stages.size() || i >= b.stages.size() || a.stages[i].stage != b.stages[i].stage ||
        normalize_reply(a.stages[i].reply) != normalize_reply(b.stages[i].reply))
      return c.stages[i];
  }
  return c.stages.back();
}

std::string render_differences(const table& before, const table& after,
                               const std::vector<difference>& diffs, const format_options& o) {
  const std::string o_l = o.old_label, n_l = o.new_label;
  const std::vector<std::string> h{
      "listener", "client",           "auth", "sender", "recipient", o_l, o_l + " decided by",
      n_l,        n_l + " decided by"};
  grid g;
  std::vector<std::string> colours;
  for (const auto& d : diffs) {
    const cell& any = d.before ? *d.before : *d.after;
    std::vector<std::string> f{any.listener, any.client, any.auth, any.sender, any.recipient};
    for (const cell* c : {d.before, d.after}) {
      if (!c) {
        f.push_back("(no such cell)");
        f.push_back("");
        continue;
      }
      const stage_result* s = &c->decisive();
      if (o.first_difference && d.before && d.after) s = &first_differing(*c, *d.before, *d.after);
      f.push_back(s->stage + ": " + normalize_reply(s->reply));
      f.push_back(c->decided_by());
    }
    colours.push_back(o.colour ? "\x1b[33m" : "");
    g.push_back(std::move(f));
  }
  switch (o.what) {
    case format::markdown:
      return markdown(h, g);
    case format::csv:
      return csv(h, g);
    case format::json: {
      std::string out = "{" + log::json_quote(o_l) + ":" + log::json_quote(before.config_dir) +
                        "," + log::json_quote(n_l) + ":" + log::json_quote(after.config_dir) +
                        ",\"differences\":[";
      for (std::size_t i = 0; i < g.size(); ++i) {
        out += i ? ",\n{" : "\n{";
        for (std::size_t j = 0; j < h.size(); ++j)
          out += (j ? "," : "") + log::json_quote(h[j]) + ":" + log::json_quote(g[i][j]);
        out += "}";
      }
      return out + "\n]}\n";
    }
    case format::text:
    case format::html:
      break;
  }
  std::string out = o_l + ": " + before.config_dir + "\n" + n_l + ": " + after.config_dir + "\n";
  if (g.empty())
    return out + "no cell decides differently (" + std::to_string(before.cells.size()) +
           " cells)\n";
  return out + aligned(h, g, colours) + std::to_string(g.size()) + " of " +
         std::to_string(before.cells.size()) + " cells decide differently\n";
}

}  // namespace relaylab::matrix
