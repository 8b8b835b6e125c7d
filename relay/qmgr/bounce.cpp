#include "relay/qmgr/bounce.hpp"

#include <cstdio>
#include <ctime>

namespace relaylab::qmgr {

namespace {

std::tm utc_tm(time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}

std::string orcpt_of(const bounce_recipient& r) {
  return r.orcpt.empty() ? "rfc822;" + r.address : r.orcpt;
}

/// Header block of `content`: up to and including the empty line (or everything).
std::string_view headers_of(std::string_view content) {
  if (content.starts_with("\r\n")) return content.substr(0, 2);
  const auto end = content.find("\r\n\r\n");
  return end == std::string_view::npos ? content : content.substr(0, end + 4);
}

}  // namespace

std::string rfc2822_date(time_point t) {
  const std::tm tm = utc_tm(t);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000 (UTC)", &tm);
  return buf;
}

std::string wrap_text(std::string_view text, std::size_t width, std::size_t indent) {
  std::string out, line;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    if (pos >= text.size()) break;
    auto end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    const auto word = text.substr(pos, end - pos);
    pos = end;
    if (line.empty()) {
      line = word;
    } else if (line.size() + 1 + word.size() < width) {
      line += ' ';
      line += word;
    } else {
      out += line + "\r\n";
      line = std::string(indent, ' ') + std::string(word);
    }
  }
  out += line;
  return out;
}

bool parse_remote_reply(std::string_view reason, std::string& mta, std::string& reply) {
  if (!reason.starts_with("host ")) return false;
  const auto said = reason.find(" said: ");
  if (said == std::string_view::npos) return false;
  auto host = reason.substr(5, said - 5);
  if (const auto bracket = host.find('['); bracket != std::string_view::npos)
    host = host.substr(0, bracket);
  auto rest = reason.substr(said + 7);
  if (const auto in_reply = rest.rfind(" (in reply to ");
      in_reply != std::string_view::npos && rest.ends_with(")"))
    rest = rest.substr(0, in_reply);
  mta = std::string(host);
  reply = std::string(rest);
  return true;
}

std::string compose_bounce(const bounce_input& in) {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(in.now.time_since_epoch());
  const std::string boundary =
      in.queue_id + "." + std::to_string(secs.count()) + "/" + in.myhostname;
  const std::string date = rfc2822_date(in.now);
  const std::tm tm = utc_tm(in.now);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);

  std::string m;
  m.reserve(4096 + in.content.size());
  m += "Received: by " + in.myhostname + " (" + in.mail_name + ")\r\n\tid " + in.new_queue_id +
       "; " + date + "\r\n";
  m += "Date: " + date + "\r\n";
  m += "From: Mail Delivery System <MAILER-DAEMON@" + in.myhostname + ">\r\n";
  m += "Subject: Undelivered Mail Returned to Sender\r\n";
  m += "To: " + in.sender + "\r\n";
  m += "Auto-Submitted: auto-replied\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n";
  m += "\tboundary=\"" + boundary + "\"\r\n";
  m += "Content-Transfer-Encoding: 8bit\r\n";
  m += "Message-Id: <" + std::string(stamp) + "." + in.new_queue_id + "@" + in.myhostname + ">\r\n";
  m += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

  // Part 1: the human-readable notification.
  m += "--" + boundary + "\r\n";
  m += "Content-Description: Notification\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: 8bit\r\n\r\n";
  m += "This is the mail system at host " + in.myhostname + ".\r\n\r\n";
  m += "I'm sorry to have to inform you that your message could not\r\n"
       "be delivered to one or more recipients. It's attached below.\r\n\r\n"
       "For further assistance, please send mail to postmaster.\r\n\r\n"
       "If you do so, please include this problem report. You can\r\n"
       "delete your own text from the attached returned message.\r\n\r\n"
       "                   The mail system\r\n\r\n";
  for (const auto& r : in.recipients)
    m += wrap_text("<" + r.address + ">: " + r.reason) + "\r\n\r\n";

  // Part 2: the machine-readable report.
  m += "--" + boundary + "\r\n";
  m += "Content-Description: Delivery report\r\n";
  m += "Content-Type: message/delivery-status\r\n\r\n";
  m += "Reporting-MTA: dns; " + in.myhostname + "\r\n";
  m += "X-Postfix-Queue-ID: " + in.queue_id + "\r\n";
  m += "X-Postfix-Sender: rfc822; " + in.sender + "\r\n";
  m += "Arrival-Date: " + rfc2822_date(in.arrival) + "\r\n\r\n";
  for (const auto& r : in.recipients) {
    m += "Final-Recipient: rfc822; " + r.address + "\r\n";
    m += "Original-Recipient: " + orcpt_of(r) + "\r\n";
    m += "Action: failed\r\n";
    m += "Status: " + (r.dsn.empty() ? std::string("5.0.0") : r.dsn) + "\r\n";
    std::string mta, reply;
    if (parse_remote_reply(r.reason, mta, reply)) {
      m += "Remote-MTA: dns; " + mta + "\r\n";
      m += wrap_text("Diagnostic-Code: smtp; " + reply) + "\r\n";
    } else {
      m += wrap_text("Diagnostic-Code: X-Postfix; " + r.reason) + "\r\n";
    }
    m += "\r\n";
  }

  // Part 3: the returned message, or only its headers beyond bounce_size_limit.
  const bool whole = in.content.size() <= in.bounce_size_limit_bytes;
  m += "--" + boundary + "\r\n";
  if (whole) {
    m += "Content-Description: Undelivered Message\r\n";
    m += "Content-Type: message/rfc822\r\n";
  } else {
    m += "Content-Description: Undelivered Message Headers\r\n";
    m += "Content-Type: text/rfc822-headers\r\n";
  }
  m += "Content-Transfer-Encoding: 8bit\r\n\r\n";
  m += "Return-Path: <" + in.sender + ">\r\n";
  if (whole) {
    m += in.content;
    if (!in.content.empty() && !in.content.ends_with("\r\n")) m += "\r\n";
  } else {
    m += headers_of(in.content);
  }
  if (!m.ends_with("\r\n\r\n")) m += "\r\n";
  m += "--" + boundary + "--\r\n";
  return m;
}

}  // namespace relaylab::qmgr
