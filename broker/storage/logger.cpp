#include "broker/storage/logger.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace runnel::storage {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    if (auto existing = spdlog::get("storage")) return existing;
    auto l = spdlog::stderr_color_mt("storage");
    return l;
  }();
  return *instance;
}

}  // namespace runnel::storage
