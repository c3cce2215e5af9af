// Fuzz target for the decoders of znode contents (docs/zookeeper.md):
//   /brokers/ids/<id>                  cluster::decode_registration, and the
//                                      client's zk:// bootstrap, which reads
//                                      the same data with parse_host_port
//   /topics/<t>                        cluster::decode_topic, then
//                                      meta::resolve of its config as
//                                      server.cpp applies it
//   /topics/<t>/partitions/<p>/state   cluster::decode_state
// Every input goes to every decoder. What decodes must encode back to
// something that decodes to the same value (the controller rewrites these
// nodes from what it decoded).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "broker/cluster/controller.h"
#include "broker/cluster/topic_state.h"
#include "broker/meta/topic_config.h"
#include "client/src/address.h"

namespace {

using namespace runnel;

void require(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "zk_state_fuzz: property broken: %s (input of %zu bytes)\n", what, input.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  if (auto r = cluster::decode_registration(7, input)) {
    auto again = cluster::decode_registration(7, cluster::encode_registration(*r));
    require(again.has_value() && again->host == r->host && again->port == r->port && again->rack == r->rack,
            "registration does not survive encode/decode", input);
  }
  (void)client::parse_host_port(std::string_view(input).substr(0, input.find(' ')));

  if (auto a = cluster::decode_topic(input)) {
    auto again = cluster::decode_topic(cluster::encode_topic(*a));
    require(again.has_value() && again->replicas == a->replicas && again->config == a->config,
            "topic assignment does not survive encode/decode", input);
    (void)meta::resolve(meta::topic_config{}, a->config);
  }

  if (auto s = cluster::decode_state(input)) {
    auto again = cluster::decode_state(cluster::encode_state(*s));
    require(again.has_value() && *again == *s, "partition state does not survive encode/decode", input);
  }
  return 0;
}
