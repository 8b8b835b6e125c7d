// A temporary, private Postfix started from a relaylab configuration for `relaylab matrix
// --oracle postfix`: the recipe of tests/oracle/postfix_instance.py in C++. The config directory
// is copied (paths into it rewritten), every master.cf inet listener moves to a free loopback
// port, and main.cf gets its own queue/data directories and log file, XCLIENT for loopback and
// deferred delivery (no mail leaves, no DNS is needed). A watchdog process stops the instance
// and removes its directory if relaylab dies first. Runs as root (Postfix's master needs it).
#pragma once

#include "relay/config/config.hpp"

#include <map>
#include <memory>
#include <string>

namespace relaylab::matrix {

class postfix_instance {
 public:
  /// Starts Postfix and waits (bounded) until every listener accepts connections. Errors
  /// (Postfix not installed, not root, a file that cannot be copied, `postfix start` failing,
  /// a listener that does not come up): nullptr, `error` says why and ends with the instance's
  /// maillog when there is one.
  static std::unique_ptr<postfix_instance> start(const config::configuration& cfg,
                                                 std::string& error);
  ~postfix_instance();  // postfix stop, bounded wait, SIGKILL, directory removed
  postfix_instance(const postfix_instance&) = delete;
  postfix_instance& operator=(const postfix_instance&) = delete;

  /// The loopback port of a master.cf inet service (by its name in master.cf), 0 if none.
  int port(const std::string& listener) const;
  /// `mail_version` as the installed Postfix reports it ("3.7.11").
  const std::string& version() const { return version_; }
  const std::string& directory() const { return dir_; }

 private:
  postfix_instance() = default;
  void stop();

  std::string dir_;
  std::string version_;
  std::map<std::string, int> ports_;
  int watchdog_fd_ = -1;  // closing it without writing lets the watchdog clean up
};

}  // namespace relaylab::matrix
