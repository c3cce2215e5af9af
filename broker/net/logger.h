#pragma once
#include <spdlog/spdlog.h>

namespace runnel::net {

// The "net" logger: connections, requests, shards.
spdlog::logger& logger();

}  // namespace runnel::net
