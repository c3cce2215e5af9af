#pragma once
// Deterministic batch contents for crash tests: the batch at base offset `o`
// is a pure function of `o`, so a checker can verify every recovered batch.

#include <cstdint>
#include <vector>

#include "schemas/batch.h"

namespace runnel::testing {

std::vector<std::byte> crash_batch(offset o);
// True when `batch` (one whole batch, CRC already checked) holds exactly
// what crash_batch(its base offset) built.
bool is_crash_batch(std::span<const std::byte> batch);

}  // namespace runnel::testing
