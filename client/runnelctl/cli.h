#pragma once
// What runnelctl's commands share: parsed arguments, the one way to fail
// (one line on stderr, exit 1), JSON escaping, connecting to the cluster.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "runnel/admin.h"

namespace runnelctl {

struct usage_error {
  std::string what;
};

struct args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> options;  // --name -> values
  std::map<std::string, bool> flags;

  [[nodiscard]] std::optional<std::string> opt(const std::string& name) const {
    auto it = options.find(name);
    if (it == options.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
  }
  [[nodiscard]] bool flag(const std::string& name) const { return flags.contains(name); }
};

args parse(int argc, char** argv);
std::int64_t to_int(const std::string& what, const std::string& s);
std::map<std::string, std::string> configs_of(const args& a);
// Prints the error on stderr and exits 1 (_Exit: clients' I/O threads still run).
[[noreturn]] void fail(const runnel::error& e);

template <class T>
T check(runnel::result<T> r) {
  if (!r) fail(r.error());
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

std::string json_escape(std::string_view s);
// ISO 8601 date-time to ms since the epoch: YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH[:]MM]
// (UTC without a zone); nullopt when malformed.
std::optional<std::int64_t> parse_datetime_ms(std::string_view s);
// ms since the epoch as YYYY-MM-DDTHH:MM:SS.fffZ ("-" when negative).
std::string format_ms(std::int64_t ms);
std::string bootstrap_of(const args& a);
std::unique_ptr<runnel::admin> connect_admin(const args& a);
std::string join(const std::vector<std::int32_t>& v);

// group list | describe | lag | reset-offsets | delete (group_command.cpp).
int group_command(const args& a);
// dlq list | inspect | replay (dlq_command.cpp).
int dlq_command(const args& a);
// queue create | receive (queue_command.cpp; send is produce).
int queue_command(const args& a);

}  // namespace runnelctl
