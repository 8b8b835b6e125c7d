// The compiled configuration of one master.cf service: immutable after engine::create(),
// shared by every session's evaluator.
#pragma once

#include "relay/maps/maps.hpp"
#include "relay/policy/address.hpp"
#include "relay/policy/catalogue.hpp"
#include "relay/policy/match_list.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace relaylab::policy::detail {

/// A restriction's answer (Postfix's SMTPD_CHECK_DUNNO / OK / REJECT).
enum class status { dunno, ok, reject };
/// Postfix's MAIL_ERROR_* class of a rejection (warn_if_reject ignores software/resource).
enum class error_class { policy, software, resource, bounce, protocol };

struct compiled {
  // Restriction lists, in Postfix's names.
  restriction_list client, helo, sender, relay, recipient, data, eod, etrn;
  class_map classes;
  std::map<std::string, std::unique_ptr<maps::table>> tables;  // by spec as written

  match_list mynetworks, relay_domains, mydestination, virtual_alias_domains,
      virtual_mailbox_domains, xclient_hosts, bare_newline_exclusions, event_limit_exceptions;
  std::vector<own_address> own_addresses;

  std::vector<const maps::table*> local_rcpt_maps, relay_rcpt_maps, virt_alias_maps,
      virt_mailbox_maps, canonical_maps, rcpt_canon_maps, sender_login_maps;
  bool local_rcpt_maps_set = false, relay_rcpt_maps_set = false, virt_mailbox_maps_set = false,
       sender_login_maps_set = false;

  bool delay_reject = true, relay_before_rcpt = true, allow_untrusted_routing = false,
       swap_bangpath = true, percent_hack = true, resolve_dequoted = true,
       resolve_numeric_domain = false, append_at_myorigin = true, append_dot_mydomain = false,
       show_unknown_table = true, reject_unlisted_rcpt = true, reject_unlisted_sender = false,
       soft_bounce = false, sasl_enable = false, access_parent_style = true;
  int relay_code = 554, local_rcpt_code = 550, relay_rcpt_code = 550, virt_alias_code = 550,
      virt_mailbox_code = 550, map_reject_code = 554, map_defer_code = 450, reject_code = 554,
      defer_code = 450, non_fqdn_code = 504, bad_name_code = 501, unk_client_code = 450,
      mul_rcpt_code = 550, plaintext_code = 450;
  std::string myhostname, myorigin, mydomain, rcpt_delim, null_key, double_bounce, empty_address;
};

}  // namespace relaylab::policy::detail
