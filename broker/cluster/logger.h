#pragma once
// The "cluster" logger (stderr, like every broker logger).

#include <spdlog/spdlog.h>

namespace runnel::cluster {

spdlog::logger& logger();

}  // namespace runnel::cluster
