//! The languages a reader can be shown words in: `--report-lang` and the job key
//! `report_lang` choose the report's, and a policy's clause titles are given per language.

use std::fmt;

/// A language, named by its BCP 47 tag (`en`, `zh-CN`) on the command line, in job and policy
/// files and in the page's `<html lang>`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
pub enum Lang {
    /// English.
    #[default]
    #[value(name = "en")]
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese, as the SLA itself is written.
    #[value(name = "zh-CN")]
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Lang {
    /// Every language, in the order messages list them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag, as typed after `--report-lang` and written in `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn the_flag_the_files_and_the_page_use_one_tag_per_language() {
        for lang in Lang::ALL {
            let flag = lang
                .to_possible_value()
                .expect("every language is a flag value");
            assert_eq!(flag.get_name(), lang.tag());
            let toml_value: Lang = toml::Value::String(lang.tag().into()).try_into().unwrap();
            assert_eq!(toml_value, lang);
            assert_eq!(serde_json::to_value(lang).unwrap(), lang.tag());
        }
        assert_eq!(Lang::default(), Lang::En);
    }

    #[test]
    fn an_unknown_language_names_the_allowed_ones() {
        let err = toml::Value::String("fr".into())
            .try_into::<Lang>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`en`") && err.contains("`zh-CN`"), "{err}");
        assert!(
            Lang::from_str("zh-cn", false).is_err(),
            "tags are matched exactly"
        );
    }
}
