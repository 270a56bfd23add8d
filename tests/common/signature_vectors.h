#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

// Published vectors of Alibaba Cloud's two POP request signatures: data
// only, shared by the sidecar's signer tests (tests/unit/alibaba) and the
// emulator's verifier tests (tests/unit/emulator), which must each reach
// them with their own implementation. Each names its source.
namespace credsync::testing::signature_vectors {

using ParamMap = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------
// RPC, HMAC-SHA1

// Alibaba Cloud "Request signatures" doc example, ECS DescribeRegions
// (help.aliyun.com/en/document_detail/130769.html); secret "testsecret".
inline ParamMap rpcDocParams() {
  return {{"AccessKeyId", "testid"},
          {"Action", "DescribeRegions"},
          {"Format", "XML"},
          {"SignatureMethod", "HMAC-SHA1"},
          {"SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
          {"SignatureVersion", "1.0"},
          {"Timestamp", "2016-02-23T12:46:24Z"},
          {"Version", "2014-05-26"}};
}
inline constexpr char kRpcDocSecret[] = "testsecret";
inline constexpr char kRpcDocGetStringToSign[] =
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-"
    "4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z"
    "%26Version%3D2014-05-26";
inline constexpr char kRpcDocGetSignature[] = "OLeaidS1JvxuMvnyHOwuJ+uX5qY=";
// The same parameters signed with POST (recomputed; third-party tests agree).
inline constexpr char kRpcDocPostSignature[] = "MxbnVAM4w6sft9xjVpe/GCKueuk=";

// aliyun/alibaba-cloud-sdk-go sdk/auth/rpc_signature_composer_test.go
// (TestRpcSignatureComposer), GET, secret "accessKeySecret".
inline ParamMap rpcGoComposerParams() {
  return {{"AccessKeyId", "accessKeyId"},
          {"Action", ""},
          {"Format", "JSON"},
          {"RegionId", "regionId"},
          {"SignatureMethod", "HMAC-SHA1"},
          {"SignatureNonce", "MOCK_UUID"},
          {"SignatureType", ""},
          {"SignatureVersion", "1.0"},
          {"Timestamp", "mock date"},
          {"Version", ""}};
}
inline constexpr char kRpcGoComposerSecret[] = "accessKeySecret";
inline constexpr char kRpcGoComposerStringToSign[] =
    "GET&%2F&AccessKeyId%3DaccessKeyId%26Action%3D%26Format%3DJSON%26RegionId%3DregionId"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3DMOCK_UUID%26SignatureType%3D"
    "%26SignatureVersion%3D1.0%26Timestamp%3Dmock%2520date%26Version%3D";
inline constexpr char kRpcGoComposerSignature[] = "7loPmFjvDnzOVnQeQNj85S6nFGY=";
// The same with SecurityToken=accessKeyStsToken added.
inline constexpr char kRpcGoComposerSecurityToken[] = "accessKeyStsToken";
inline constexpr char kRpcGoComposerWithTokenSignature[] = "5Nxdcler+ihqWqv0Hr2On4PsBf4=";

// aliyun/alibabacloud-rpc-util-sdk (test_get_signature_v1, testGetSignature)
// and aliyun/darabonba-openapi-util (getRPCSignature): GET, secret "secret".
inline ParamMap rpcTeaUtilParams() { return {{"query", "test"}, {"body", "test"}}; }
inline constexpr char kRpcTeaUtilSecret[] = "secret";
inline constexpr char kRpcTeaUtilStringToSign[] = "GET&%2F&body%3Dtest%26query%3Dtest";
inline constexpr char kRpcTeaUtilSignature[] = "XlUyV4sXjOuX5FnjUz9IF9tm5rU=";

// ---------------------------------------------------------------------------
// ACS3-HMAC-SHA256

// Alibaba Cloud "Request syntax and signature method V3" doc example, ECS
// RunInstances (alibabacloud.com/help/en/sdk/product-overview/
// v3-request-structure-and-signature): POST, empty body.
inline constexpr char kAcs3DocAccessKeyId[] = "YourAccessKeyId";
inline constexpr char kAcs3DocSecret[] = "YourAccessKeySecret";
inline constexpr char kAcs3EmptyPayloadHash[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline ParamMap acs3DocQuery() {
  return {{"ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"},
          {"RegionId", "cn-shanghai"}};
}
inline std::vector<std::pair<std::string, std::string>> acs3DocHeaders() {
  return {{"host", "ecs.cn-shanghai.aliyuncs.com"},
          {"x-acs-action", "RunInstances"},
          {"x-acs-content-sha256", kAcs3EmptyPayloadHash},
          {"x-acs-date", "2023-10-26T10:22:32Z"},
          {"x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"},
          {"x-acs-version", "2014-05-26"}};
}
inline constexpr char kAcs3DocSignedHeaders[] =
    "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
inline constexpr char kAcs3DocCanonicalRequest[] =
    "POST\n"
    "/\n"
    "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
    "host:ecs.cn-shanghai.aliyuncs.com\n"
    "x-acs-action:RunInstances\n"
    "x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
    "x-acs-date:2023-10-26T10:22:32Z\n"
    "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
    "x-acs-version:2014-05-26\n"
    "\n"
    "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr char kAcs3DocStringToSign[] =
    "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259";
inline constexpr char kAcs3DocSignature[] =
    "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0";
inline constexpr char kAcs3DocAuthorization[] =
    "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
    "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
    "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0";

// aliyun/darabonba-openapi-util getAuthorization tests: query
// {test: ok, empty: ""}, the header x-acs-test twice in two cases (merged to
// "x-acs-test:http,https"), SM3("test") as an opaque payload hash, access
// key "acesskey", secret "secret".
inline ParamMap acs3OpenApiUtilQuery() { return {{"test", "ok"}, {"empty", ""}}; }
inline std::vector<std::pair<std::string, std::string>> acs3OpenApiUtilHeaders() {
  return {{"x-acs-test", "http"}, {"x-acs-TEST", "https"}};
}
inline constexpr char kAcs3OpenApiUtilPayloadHash[] =
    "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23";
inline constexpr char kAcs3OpenApiUtilSecret[] = "secret";
// python/tests/test_client.py (test_get_authorization), method GET.
inline constexpr char kAcs3OpenApiUtilGetCanonicalRequest[] =
    "GET\n/\nempty=&test=ok\nx-acs-test:http,https\n\nx-acs-test\n"
    "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23";
inline constexpr char kAcs3OpenApiUtilGetAuthorization[] =
    "ACS3-HMAC-SHA256 Credential=acesskey,SignedHeaders=x-acs-test,"
    "Signature=d16b30a7699ae9e43875b13195b2f81bcc3ed10c14a9b5eb780e51619aa50be1";
// golang/service/service_test.go (Test_GetAuthorization), method "".
inline constexpr char kAcs3OpenApiUtilEmptyMethodSignature[] =
    "4ab59fffe3c5738ff8a2729f90cc04fe18b02a4b15b2102cbaf92f9ff3df2ea3";

}  // namespace credsync::testing::signature_vectors
