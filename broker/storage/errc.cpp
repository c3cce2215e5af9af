#include "broker/storage/errc.h"

#include <string>

namespace runnel::storage {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "runnel.storage"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::offset_out_of_range: return "offset out of range";
      case errc::corrupt_log: return "log is corrupt";
      case errc::log_offline: return "log is offline after an I/O error";
      case errc::log_closed: return "log is closed";
      case errc::bad_log_directory: return "directory name is not <topic>-<partition>";
      case errc::log_exists: return "log already exists";
      case errc::unknown_log: return "no such log";
      case errc::bad_batch: return "bytes are not one whole record batch";
      case errc::offset_mismatch: return "the batch does not start at the log end";
      case errc::out_of_order_sequence: return "the batch's sequence number does not follow the producer's last batch";
      case errc::producer_fenced: return "a newer epoch of this producer id has written to the partition";
      case errc::unknown_producer_id: return "the partition does not know this producer (expired or never seen)";
      case errc::bad_msg_id: return "a runnel.msg.id header is longer than 256 bytes";
      case errc::storage_full: return "no space left on the log's device; not written, retry later";
    }
    return "unknown runnel.storage error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace runnel::storage
