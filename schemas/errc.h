#pragma once
// Errors found in batch bytes (network or disk input). Values, never asserts.

#include <system_error>

namespace runnel::schemas {

enum class errc {
  batch_too_short = 1,     // fewer bytes than the header, or than its length field says
  bad_length,              // length field below the minimum, not a multiple of 8, or over the limit
  bad_magic,               // unknown format version
  unsupported_attributes,  // a compression codec or attribute bit we do not know
  crc_mismatch,            // CRC-32C does not match the bytes
  bad_records,             // the records FlatBuffer fails the Verifier
  record_count_mismatch,   // header counts disagree with the records
  bad_offset_delta,        // records are not numbered 0, 1, 2, ...
  bad_timestamps,          // max_timestamp below first_timestamp
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace runnel::schemas

template <>
struct std::is_error_code_enum<runnel::schemas::errc> : std::true_type {};
