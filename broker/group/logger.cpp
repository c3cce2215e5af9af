#include "broker/group/logger.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace runnel::group {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    if (auto existing = spdlog::get("group")) return existing;
    auto l = spdlog::stderr_color_mt("group");
    return l;
  }();
  return *instance;
}

}  // namespace runnel::group
