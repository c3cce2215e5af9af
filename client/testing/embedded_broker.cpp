#include "runnel/testing/embedded_broker.h"

#include <cstdlib>

#include "broker/config.h"
#include "broker/net/server.h"

namespace runnel::testing {

struct EmbeddedBroker::impl {
  embedded_broker_options options;
  std::filesystem::path dir;
  std::uint16_t port = 0;
  std::unique_ptr<net::server> server;

  result<void> launch(std::uint16_t want_port) {
    broker_config cfg;
    cfg.listen_host = "127.0.0.1";
    cfg.listen_port = want_port;
    cfg.data_dir = dir / "data";
    cfg.shards = options.shards;
    for (const auto& [k, v] : options.config) {
      if (auto r = cfg.set(k, v); !r) return std::unexpected(error{errc::invalid_argument, r.error()});
    }
    auto s = net::server::start(cfg);
    if (!s) return std::unexpected(error{errc::connection_failed, s.error().message});
    server = std::move(*s);
    port = server->port();
    return {};
  }
};

EmbeddedBroker::EmbeddedBroker(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

EmbeddedBroker::~EmbeddedBroker() {
  stop();
  std::error_code ec;
  std::filesystem::remove_all(impl_->dir, ec);
}

result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::start(embedded_broker_options options) {
  auto i = std::make_unique<impl>();
  i->options = std::move(options);
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/runnel-embedded-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) return std::unexpected(error{errc::invalid_argument, "mkdtemp " + templ});
  i->dir = templ;
  if (auto r = i->launch(0); !r) {
    std::error_code ec;
    std::filesystem::remove_all(i->dir, ec);
    return std::unexpected(r.error());
  }
  return std::unique_ptr<EmbeddedBroker>(new EmbeddedBroker(std::move(i)));
}

std::uint16_t EmbeddedBroker::port() const { return impl_->port; }
std::string EmbeddedBroker::bootstrap() const { return "127.0.0.1:" + std::to_string(impl_->port); }
const std::filesystem::path& EmbeddedBroker::data_dir() const { return impl_->dir; }
bool EmbeddedBroker::running() const { return impl_->server != nullptr; }

void EmbeddedBroker::stop() {
  if (impl_->server) {
    impl_->server->stop();
    impl_->server.reset();
  }
}

result<void> EmbeddedBroker::restart() {
  stop();
  if (auto r = impl_->launch(impl_->port); r) return r;
  return impl_->launch(0);  // the old port was taken meanwhile
}

void EmbeddedBroker::delay_responses(std::chrono::milliseconds delay) {
  if (impl_->server) impl_->server->set_response_delay(delay);
}

}  // namespace runnel::testing
