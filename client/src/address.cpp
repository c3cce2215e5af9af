#include "client/src/address.h"

#include <charconv>

namespace runnel::client {

std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  unsigned port = 0;
  auto p = s.substr(colon + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc{} || end != p.data() + p.size() || port == 0 || port > 65535)
    return std::nullopt;
  return std::pair{std::string(s.substr(0, colon)), static_cast<std::uint16_t>(port)};
}

result<std::vector<host_port>> parse_bootstrap(std::string_view list) {
  std::vector<host_port> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = list.find(',', start);
    auto entry = list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    auto hp = parse_host_port(entry);
    if (!hp) {
      return std::unexpected(error{
          errc::invalid_argument,
          "bootstrap '" + std::string(list) + "': '" + std::string(entry) + "' is not host:port"});
    }
    out.push_back(host_port{std::move(hp->first), hp->second});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string join(const std::vector<host_port>& addresses) {
  std::string s;
  for (const auto& a : addresses) {
    if (!s.empty()) s += ", ";
    s += a.str();
  }
  return s;
}

}  // namespace runnel::client
