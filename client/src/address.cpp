#include "client/src/address.h"

#include <charconv>

namespace runnel::client {

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
