// request_decoder_fuzz_driver [iterations]: seeded mutations of valid
// frames of every API through LLVMFuzzerTestOneInput. Deterministic and
// bounded (ctest runs 200000 inputs); a crash or sanitizer report fails it.

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "tests/support/batches.h"
#include "tests/support/raw_client.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using namespace runnel;

std::vector<std::vector<std::byte>> seeds() {
  std::vector<std::vector<std::byte>> out;
  {
    flatbuffers::FlatBufferBuilder fbb;
    out.push_back(testing::request_frame(fbb, wire::Request::MetadataRequest, wire::CreateMetadataRequest(fbb).Union()));
  }
  for (int records : {1, 5}) {
    auto batch = testing::make_batch(records, 40);
    out.push_back(testing::produce_frame("topic", 0, batch));
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::FetchPartition>> parts{wire::CreateFetchPartition(fbb, 0, 10, 4096)};
    std::vector<flatbuffers::Offset<wire::FetchTopic>> topics{wire::CreateFetchTopicDirect(fbb, "t", &parts)};
    out.push_back(testing::request_frame(fbb, wire::Request::FetchRequest,
                                         wire::CreateFetchRequestDirect(fbb, 100, 1, 1 << 20, &topics).Union()));
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::ConfigEntry>> cfg{wire::CreateConfigEntryDirect(fbb, "retention.ms", "1")};
    std::vector<flatbuffers::Offset<wire::CreatableTopic>> t{wire::CreateCreatableTopicDirect(fbb, "n", 3, 1, &cfg)};
    out.push_back(testing::request_frame(fbb, wire::Request::CreateTopicsRequest,
                                         wire::CreateCreateTopicsRequestDirect(fbb, &t).Union()));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 20000;
  std::mt19937_64 rng(20261125);
  auto corpus = seeds();
  for (const auto& s : corpus) LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  for (long i = 0; i < iterations; ++i) {
    auto input = corpus[rng() % corpus.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !input.empty(); ++e) {
      const std::size_t at = rng() % input.size();
      switch (rng() % 4) {
        case 0: input[at] ^= static_cast<std::byte>(1U << (rng() % 8)); break;  // bit flip
        case 1: input[at] = static_cast<std::byte>(rng()); break;              // random byte
        case 2: input.resize(at); break;                                        // truncate
        default: input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::byte>(rng())); break;
      }
    }
    // Mostly keep the frame length consistent, so the envelope and the
    // record sets get parsed rather than the head refused.
    if (input.size() >= 8 && rng() % 4 != 0) {
      const auto len = static_cast<std::uint32_t>(input.size() - 4);
      std::memcpy(input.data(), &len, 4);
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  }
  std::printf("request decoder: %ld mutated inputs, no crash\n", iterations);
  return 0;
}
