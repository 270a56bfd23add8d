#pragma once

// The official Java KMS instance SDK's client-key test vector, copied from
// aliyun/alibabacloud-dkms-gcs-java-sdk at c12d829bdf0226bf2b0951f416f19c847923640b,
// openapi-credential/src/test/java/com/aliyun/dkms/gcs/openapi/credential/ClientTest.java
// (getSignature): a client key file's content with password "1234", and the
// Authorization it gives for the string "string to sign"
// (docs/research/kms-instance-api.md §4.1(b)), plus the full GetSecretValue
// request derived from it in §4.2.
namespace credsync::emulator::dkms_fixture {

inline constexpr char kJavaFixtureKeyId[] = "key_for_unit_test";
inline constexpr char kJavaFixturePassword[] = "1234";
inline constexpr char kJavaFixturePrivateKeyData[] =
    "MIIJwwIBAzCCCY8GCSqGSIb3DQEHAaCCCYAEggl8MIIJeDCCBC8GCSqGSIb3DQEHBqCCBCAwggQcAgEAMIIEFQYJKo"
    "ZIhvcNAQcBMBwGCiqGSIb3DQEMAQYwDgQIFnZYCeuJPxUCAggAgIID6MfYATEagEZ1nT/HlDnoqoQhgUG777R5+Rwd"
    "I0udVY60pupTcpIbaScdUdbTeMBoG9fVhZp8nx55ztd14zYa2CNQq2zhmv7pN8dAB99Ht7ZAMXp34G+1wzYLzdyJi7"
    "ERS6v93vM6zNnbAnP/fDskzyU0oRFduZFJZFEfNw/ASot4zs+48Z8HXLnEorjKJCpcO8WNtmKMkoBYFBKNFuib6ncd"
    "5EwjLpDk1r8oW4ZU5jXkInx9CuKWBht1cDVcTpwxJ7DiJqUnVbl1moSoaZPfar9xUMEPB2RZefvrx/2W2/Odop4BR8"
    "cuDzla1/738UthFFWyjSvjeeIx30ciO6MqgvVV2hwoqBEQz2IDv/f7IQPVLHKlnfVh8xh/EJKi1SDrR1jd7AjDeOI+"
    "wQjFlQhjG1zleSvAd8sGLctrdK7jMv5a9g5ezLU70DdHmEm4E/DJ8lz3ITnCp1rWSUbDXUm05BgcTnoGlvwRAWAKtF"
    "lb3yWy+hgEt0UzqFws+XKufximNEOshcQFc9Uq1CPCnMYvonZeCr4ae7bBTLrbp7KJMajFj3VqomALKJA4UZJYgWLE"
    "TXtIPKMuIPGA4nUCWimoH54xueki4GtcsiuDvgopsKQ6Sfp/oLbmwd+B73c2pfOgFjUDmgLWF3zNC+vJKK1LbgfaTI"
    "PnYq6LdBZvv3rc1GDtXxqfwWJAoGArzUvW/TvOOO9xUn129VLuzJYvCsSsaV3p5OeVxRHdq3Gs+xgGp+dCA5bRggPI"
    "Vow238U+P/WvxDbhIA37NmCJUKSy4+AzsypzF9C2yZifdsQVu/55T/5xge2yrrnlpx/16vUw/NxrCp/J7DeFFSQSru"
    "0gy1nJXxd9zCd6uA9zol0rp0kmhof9WCaGsXIeagbrAi16dacymxS34J5JA/5K/fFc5nP7SJ4w+3OL1CAMMO2GXOex"
    "Xs6CeIb8aQNn0zy7vb1+WmQH/qCOxQ3P1E6f7kLLs8UObFzfzJpuQ/CPSQuQZA5EPiXR/1OBRYvfYJMVBjkOkF69VX"
    "E7R8cgmRm7LV3dK7xuVlpmixXfgUddDmQSs86cmQ+cjm70+m5Q80WzKL8pvspKjaLXYXHzkAL1/fNtZJ8hwcMYqqrv"
    "PgN96s4UvDHdMt4EGytQohMvsuNAKvn4G4+panc/DI6KyWDdVlWgL8y0SYjFQOFZjPSwaZkHPN/7YH1pPjh7xcphqm"
    "21/JB/D9P7b8Sm5njD7zHMhEUZiI7+ojBgNqsTV9VKeYc7r8IyRdzDWgaiyw1IBLtyWAwFpxuphe3bHd4/QPs4C2J/"
    "FZLNtG8UlOZyV+CT54WGIyna4QJlakTzbLz1m8cwggVBBgkqhkiG9w0BBwGgggUyBIIFLjCCBSowggUmBgsqhkiG9w"
    "0BDAoBAqCCBO4wggTqMBwGCiqGSIb3DQEMAQMwDgQIzldmSOWnxr4CAggABIIEyMrvkbizMHDr9STceCtzbomo96GW"
    "GhoMYY9y+r3Slmiwh07JctT4PLPoNW+zO1HjV6n2GjzbXy+Cw3SM8oizvxwJ+SPIVlmL25ArK8frFr0tqTx/5dJUWx"
    "9C9JqHnAEG7KE80RXzR6nbEXlzGRoJrecuoFyTDr4ubHveQIjOuiKQh5N/RaMKCIlGcol87q9dV5a2NEOxuT0f+EQD"
    "+Yk8e6c4LKPZNkCtHHTTZehq91sF2Ve6cCJLefRPFLkNIsX2fMVBQ6nZ3xZFYQFK14EkrrPx7B6cT3AiGbBUxfHpjr"
    "952IJb1Tr3I+btFfOVRUruMJ2Fk2LevgsuUheFQ/HTVBsV5UrEGbmIruGwEhx9Jl38Cq8KUA4YIdXBbNIGEXSw3lCJ"
    "XnYMo8RJ3wu7LzzStxsvl7y9kbxixtWKji1bzWdVH4eBNA1WwQTjfrKu4lcZTaESPsdHIBGg1mT1VFPFL+nUe9Cdgn"
    "fSUYCY74u2HbeAq+daCccxk2Mtc338LyeLM9oFvpLkofObVkORLrQtW+GjCBugPqdvG+LVO0HOdXQEEGWiCC8E/98J"
    "HHWgA5M/yIz0SXsySRY1XICQryL2sIXd8YDmSYYkVsEgQYcu630Sov2kVxXYtUL/ojZ83uCaD2dYHGY/cPx7BxmXip"
    "R0EY/myOLmT/pIl9cZZiK0MI+EpMP96+bxO1BUGg46Onu76GkjysPNnDR6V8JTgktU/agCC1GvsJbQH1ELxhgO8N6P"
    "2ngne5c4zHxEmsc5Ixn1EfgsES7AYHlTTV995GWH/br+q2B+UeS1OePrZrMdRyAkFfKua5aGNw+8zQGwVPWHXKlUcl"
    "8jww/ShsF8nbG9JnJS7JYZr+ajkeDfkVmzPyInmXdVk2Tw48k/MRJwMmdfOhA4uZHrhKsYHohSsio/A67QPg6qS16k"
    "yz2bVpEIT/V+dhT2/E3WtJnoF9k17OdhkHrNnbZrJpdntnnnRxCd5fDVObH8KApBSP6cgAtnaNMUx/qqHcdV7ylAdK"
    "GDARbiub9XqkXwUYyd2foLukWSRt3uKRgAvMxja+u1amF9o3DqVdgANQmSDDPuDwMYuQbLRdkxrWo/1Qnv29ZvyWuu"
    "vIWMW0hPu0UGk4cZeDqGpYOJec0Cu8n9frQ6lOpKa3raVDeJqJsScLYGibMknvsEg1rv+8NjAq7n4mrFG3IapVOz7j"
    "tlMR+XoxIvrirhh0gY7BBmDTEH3Kdr/yZd2xeDADfMJJXaTpzkVtsD525Kqfu9Xtf/u49qKormWJ7MNjOgCGhwRzLy"
    "OryugHPmdR2PU1Zdu4AH5jUIR/GnPlo9uMmmp1zC8SXLeqJ0RVj9qI4FX3OLgFFj9OyuQgbti4NSDlG3s19EjJQG6V"
    "8M3kU60G3KZb/u5CFU0BgiUYWgI/lOKGrCVTDpADJNwOn+qAfQ3XrWz6NHzra/DNK8QgJVHj62v9Vb1TxkULZHJVtI"
    "4UZRXJBUJBIOEbvuu3HRQfF1Zo0RFuR7fqCb7C8W4Uq3ZO5Fif+9KkzrOM6/zoGFz88V81g2r5O7hLnQQxo4T04QDm"
    "a6OLh2vzUWLQ6oz3EOGaO5C5hOkMRze/JlQNWY9EhIfXGh8U8H2zwKNp64QoO8OoSFnyO39XlIkTElMCMGCSqGSIb3"
    "DQEJFTEWBBR9h1HdgBC4kcrU2MWHh0sDIw55BDArMB8wBwYFKw4DAhoEFEmWHI7FV5D8vAbDu3sqALKxOTZTBAgU+G"
    "0z7dWZSg==";
inline constexpr char kJavaFixtureStringToSign[] = "string to sign";
inline constexpr char kJavaFixtureSignature[] =
    "Bearer "
    "8qCkGCbTUrY8sA17CiaGvUEX/xFAsHyckv8sh3eVUyUz9iMyJE+vGX+LnVX+vNxCE+bepwxlrewa8mlppq5SoswwGW"
    "ipOFP91TqgdqD44hOiLr/5wtDNRAYyWzriFD/gt1ZklzxKr0rmW0c7kCA+QnB0t6uotHPfXhG+5/E7zRMq/GpRIylY"
    "vi50k/26vTouRo7zjc4f6Gf9L+oAuPRih6KarNvw08FQH8DRQ3xVe4QKVwW4hdk47RQ8JySR6lLoli8DFXRmY4d7NN"
    "AlyIkGauF1MXGoKv+IzgSJ24QnCyQZ/3bXD4ZnGCguKd92mvF1z7S5hw+aeuXsU+he4LS8QA==";

// §4.2: GetSecretValueRequest{SecretName:"my-secret", VersionStage:"ACSCurrent",
// FetchExtendedConfig:true}, signed with the key above at this date.
inline constexpr char kFullRequestBodyHex[] = "0a096d792d736563726574120a41435343757272656e742001";
inline constexpr char kFullRequestContentSha256[] =
    "83ECECE04B659A2FA82D982946D681EE3A0C4A763E5A02B415872938C1DF1ECC";
inline constexpr char kFullRequestDate[] = "Tue, 24 Nov 2026 17:00:00 GMT";
inline constexpr char kFullRequestStringToSign[] =
    "POST\n83ECECE04B659A2FA82D982946D681EE3A0C4A763E5A02B415872938C1DF1ECC\n"
    "application/x-protobuf\nTue, 24 Nov 2026 17:00:00 GMT\n"
    "x-kms-acccesskeyid:key_for_unit_test\nx-kms-apiname:GetSecretValue\n"
    "x-kms-apiversion:dkms-gcs-0.2\nx-kms-signaturemethod:RSA_PKCS1_SHA_256\n/";
inline constexpr char kFullRequestAuthorization[] =
    "Bearer AIoe+17+tpjCGg7ECDx/sch/vmff82psWu6W4RuVEgVqvxtd4RXnhAHQ7/1ThDo5i/lg7lq0TOgN5D1RFXq"
    "e/m4zxWqJuzrOrmfs5yUbAH029rcdRfBI9kDYAFJGPeLKAZURVvjAmX+V/mZ5vp2gasjV5DoZ+y2oKsrKti/tKlJsP"
    "nLHkMMxqHe+VPDnZEoIoLcdQxAwFuZ50ff52RsxwKMtZFnkk8IDQIdlUlGP8TjY68QsceTaZFW0zUVMsEX2c+EDGcX"
    "a6GlV3yLpvcRp5TX2dPJCf9bbViwrKLABN1aUPx6bDBMIH/Mm0v5phLFXdm1+I0A74fQBJecOniuXcw==";

}  // namespace credsync::emulator::dkms_fixture
