#pragma once
// Storage errors. System call failures are std::error_code in the system
// category; these are the log's own conditions.

#include <system_error>

namespace runnel::storage {

enum class errc {
  offset_out_of_range = 1,  // read/lookup below the log start or past the log end
  corrupt_log,              // a bad batch below the recovery point (never skipped)
  log_offline,              // an earlier write or fsync failed; the log takes no more appends
  log_closed,               // the log was closed
  bad_log_directory,        // a directory name that is not <topic>-<partition>
  log_exists,               // create() of a log that is already open
  unknown_log,              // no such partition log
  bad_batch,                // append() of bytes that are not one whole batch
  offset_mismatch,          // append_replica() of a batch that does not start at the log end
  // Idempotent producers (producer_state.h):
  out_of_order_sequence,    // the batch's sequence does not follow the producer's last one
  producer_fenced,          // the batch's producer epoch is older than the partition has seen
  unknown_producer_id,      // a sequence other than 0 from a producer the partition does not know (or forgot)
  bad_msg_id,               // a runnel.msg.id header longer than 256 bytes
  storage_full,             // the write met a full disk (ENOSPC, EDQUOT): not written, retry later
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace runnel::storage

template <>
struct std::is_error_code_enum<runnel::storage::errc> : std::true_type {};
