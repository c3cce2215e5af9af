#include "broker/cluster/errc.h"

namespace runnel::cluster {

namespace {

class category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "runnel.cluster"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::zookeeper_unavailable: return "ZooKeeper unavailable";
      case errc::zookeeper_failed: return "ZooKeeper operation failed";
      case errc::wrong_cluster: return "data directory of another cluster or broker";
      case errc::broker_id_in_use: return "broker id in use";
      case errc::malformed_state: return "malformed cluster state";
      case errc::not_enough_brokers: return "not enough live brokers";
      case errc::invalid_replication: return "invalid replication factor";
      case errc::stopping: return "broker stopping";
    }
    return "unknown cluster error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category c;
  return c;
}

}  // namespace runnel::cluster
