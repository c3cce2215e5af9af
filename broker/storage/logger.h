#pragma once
// The storage subsystem's spdlog logger, named "storage". Messages about one
// partition start with "[topic/partition]".

#include <spdlog/logger.h>

namespace runnel::storage {
spdlog::logger& logger();
}
