#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/crypto.h"
#include "tests/emulator/services.h"

namespace credsync::emulator {

ApiResult describeRegions(const ApiRequest& request, World& world, const Principal& caller) {
  static const std::vector<std::pair<std::string, std::string>> kRegions = {
      {"cn-hangzhou", "China (Hangzhou)"}, {"cn-shanghai", "China (Shanghai)"},
      {"cn-beijing", "China (Beijing)"},   {"cn-shenzhen", "China (Shenzhen)"},
      {"ap-southeast-1", "Singapore"},     {"eu-central-1", "Germany (Frankfurt)"},
  };
  Json regions = Json::array();
  for (const auto& [id, name] : kRegions) {
    regions.push_back({{"RegionId", id},
                       {"LocalName", name},
                       {"RegionEndpoint", absl::StrCat("ecs.", id, ".aliyuncs.com")}});
  }
  Json body;
  body["RequestId"] = absl::AsciiStrToUpper(crypto::randomUuid());
  body["Regions"] = {{"Region", regions}};
  return body;
}

}  // namespace credsync::emulator
