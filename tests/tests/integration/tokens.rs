//! Tokens on AWS come from SSM SecureString parameters, read through the real SDK against moto;
//! a parameter stored in clear is refused.

use webhooks::api::Tokens;
use webhooks::startup::aws::secure_parameter;
use webhooks_tests::provision::moto_config;
use webhooks_tests::unique_prefix;

#[tokio::test]
async fn tokens_are_read_from_secure_string_parameters() {
    let ssm = aws_sdk_ssm::Client::new(&moto_config().await);
    let name = format!("/{}/admin-tokens", unique_prefix("ssm"));
    ssm.put_parameter()
        .name(&name)
        .value("adm-current,adm-next")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let value = secure_parameter(&ssm, &name).await.unwrap();
    let tokens = Tokens::from_lists(&value, "");
    let mut headers = http::HeaderMap::new();
    for token in ["adm-current", "adm-next"] {
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        assert!(
            tokens
                .authorize(&headers, webhooks::api::auth::Access::Admin)
                .is_ok(),
            "{token}"
        );
    }
    let missing = secure_parameter(&ssm, &format!("{name}-missing"))
        .await
        .unwrap_err();
    assert!(
        missing.contains("could not read the parameter"),
        "{missing}"
    );

    let clear = format!("{name}-clear");
    ssm.put_parameter()
        .name(&clear)
        .value("adm-in-clear")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let refused = secure_parameter(&ssm, &clear).await.unwrap_err();
    assert!(refused.contains("not a SecureString"), "{refused}");
    assert!(!refused.contains("adm-in-clear"), "{refused}");
}
