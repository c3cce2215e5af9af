#include "broker/meta/errc.h"

namespace runnel::meta {

namespace {

class category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "runnel.meta"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::topic_exists: return "topic already exists";
      case errc::invalid_topic: return "invalid topic name";
      case errc::invalid_partitions: return "invalid partition count";
      case errc::invalid_replication: return "invalid replication factor";
      case errc::invalid_config: return "invalid topic config";
      case errc::unknown_topic: return "unknown topic";
      case errc::storage_failed: return "metadata could not be stored";
      case errc::malformed_store: return "metadata file malformed";
    }
    return "unknown metadata error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category c;
  return c;
}

}  // namespace runnel::meta
