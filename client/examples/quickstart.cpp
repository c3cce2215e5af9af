#include <cstdio>

#include <runnel/admin.h>
#include <runnel/consumer.h>
#include <runnel/producer.h>

int main(int argc, char** argv) {
  const std::string bootstrap = argc > 1 ? argv[1] : "127.0.0.1:9292";
  runnel::admin_config admin_cfg;
  admin_cfg.bootstrap = bootstrap;
  auto admin = runnel::admin::connect(admin_cfg);
  if (!admin) return std::fprintf(stderr, "%s\n", admin.error().what().c_str()), 1;
  (void)(*admin)->create_topic("greetings", 3);  // fine if it already exists

  runnel::producer_config producer_cfg;
  producer_cfg.bootstrap = bootstrap;
  producer_cfg.acks = -1;  // all: fsynced before the acknowledgement
  auto producer = runnel::producer::connect(producer_cfg);
  auto sent = (*producer)->send("greetings", "alice", "hello, runnel").get();
  if (!sent) return std::fprintf(stderr, "%s\n", sent.error().what().c_str()), 1;

  runnel::consumer_config consumer_cfg;
  consumer_cfg.bootstrap = bootstrap;
  auto consumer = runnel::consumer::connect(consumer_cfg);
  runnel::topic_partition_ref tp{"greetings", sent->partition};
  (void)(*consumer)->assign({tp});
  (void)(*consumer)->seek(tp, sent->offset);
  auto records = (*consumer)->poll(std::chrono::seconds(5));
  for (const auto& r : records.value()) {
    std::printf("%s/%d@%lld %.*s\n", tp.topic.c_str(), r.partition, static_cast<long long>(r.offset),
                static_cast<int>(r.value->size()), r.value->data());
  }
}
