#pragma once
// The "group" logger (stderr, like every broker logger).

#include <spdlog/spdlog.h>

namespace runnel::group {

spdlog::logger& logger();

}  // namespace runnel::group
