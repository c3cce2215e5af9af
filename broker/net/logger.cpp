#include "broker/net/logger.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace runnel::net {

spdlog::logger& logger() {
  static auto l = [] {
    auto existing = spdlog::get("net");
    return existing ? existing : spdlog::stderr_color_mt("net");
  }();
  return *l;
}

}  // namespace runnel::net
