#include "schemas/errc.h"

#include <string>

namespace runnel::schemas {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "runnel.schemas"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::batch_too_short: return "record batch is truncated";
      case errc::bad_length: return "record batch length is invalid";
      case errc::bad_magic: return "record batch has an unknown magic (format version)";
      case errc::unsupported_attributes: return "record batch uses unsupported attributes";
      case errc::crc_mismatch: return "record batch CRC-32C mismatch";
      case errc::bad_records: return "record batch records fail FlatBuffers verification";
      case errc::record_count_mismatch: return "record batch header counts disagree with its records";
      case errc::bad_offset_delta: return "record batch offset deltas are not dense from 0";
      case errc::bad_timestamps: return "record batch max timestamp is below its first timestamp";
    }
    return "unknown runnel.schemas error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace runnel::schemas
