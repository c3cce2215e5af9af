#include "schemas/host_port.h"

#include <charconv>

namespace runnel::schemas {

std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  unsigned port = 0;
  auto p = s.substr(colon + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc{} || end != p.data() + p.size() || port == 0 || port > 65535) return std::nullopt;
  return std::pair{std::string(s.substr(0, colon)), static_cast<std::uint16_t>(port)};
}

}  // namespace runnel::schemas
