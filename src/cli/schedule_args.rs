//! The shared schedule options, derived from the method registry as clap derives a CLI from one
//! struct: one `--method` whose values are the registry's names, and one option per parameter
//! (its key with dashes, its doc line as help, its derived default in the help). The CLI's
//! spelling of a field lives here alone: [`flag`] turns a key into the option that sets it.

use crate::rope::config::{Kind, Value};
use crate::rope::methods::{all_params, param};
use crate::rope::{ConfigError, Method, Param, ScheduleConfig};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

/// The option that sets the field `key`, e.g. `--beta-fast`; a flag that is on by default is
/// turned off by `--no-<key>` (`--no-truncate`). Keys that are not schedule parameters (the
/// options of other commands) follow the same dash rule.
pub fn flag(key: &str) -> String {
    let dashed = key.replace('_', "-");
    match param(key) {
        Some(p) if is_default_on_flag(p) => format!("--no-{dashed}"),
        _ => format!("--{dashed}"),
    }
}

/// A configuration error in the CLI's words: `invalid --beta-fast: must be ...`.
pub fn render(e: &ConfigError) -> String {
    e.render(&|k| flag(k))
}

fn is_default_on_flag(p: &Param) -> bool {
    matches!(p.kind, Kind::Flag) && (p.get)(&ScheduleConfig::default()) == Value::Flag(true)
}

/// `--method`'s value parser: the registry's ids, each with its aliases.
pub fn method_parser() -> impl TypedValueParser<Value = Method> {
    let values = Method::ALL.iter().map(|m| {
        PossibleValue::new(m.name())
            .aliases(m.def().aliases.iter().copied())
            .help(m.def().label)
    });
    PossibleValuesParser::new(values.collect::<Vec<_>>())
        .map(|s| Method::from_name(&s).unwrap_or_else(|| unreachable!("clap checked '{s}'")))
}

/// Options shared by every subcommand that builds a RoPE schedule: the method, and the values
/// given for any of the registry's parameters (the rest keep their defaults or are derived).
#[derive(Clone, Debug)]
pub struct ScheduleArgs {
    /// The frequency schedule.
    pub method: Method,
    /// Each parameter given on the command line, with its value.
    pub values: Vec<(&'static Param, Given)>,
}

/// A parameter's value as given: parsed by clap, or text that the parameter parses itself (a
/// list, checked when the config is built so that a bad entry is reported as the option's).
#[derive(Clone, Debug)]
pub enum Given {
    /// A value clap parsed.
    Value(Value),
    /// Text for [`Param::parse`].
    Text(String),
}

impl ScheduleArgs {
    /// The configuration: defaults, then the given values (each checked on its own), then the
    /// derived defaults of what was not given (L' = 4 L, s = L'/L, l = L'), then validation.
    pub fn to_config(&self) -> Result<ScheduleConfig, ConfigError> {
        let mut c = ScheduleConfig {
            method: self.method,
            ..ScheduleConfig::default()
        };
        for (p, v) in &self.values {
            let v = match v {
                Given::Value(v) => v.clone(),
                Given::Text(t) => p.parse(t)?,
            };
            p.assign(&mut c, v)?;
        }
        c.derive_defaults(&|k| self.values.iter().any(|(p, _)| p.key == k));
        c.validate()?;
        Ok(c)
    }
}

fn help(p: &Param) -> String {
    let mut h = if is_default_on_flag(p) {
        format!("Turn off: {}", p.doc)
    } else {
        p.doc.to_string()
    };
    if !p.unit.is_empty() {
        h.push_str(&format!(" [{}]", p.unit));
    }
    if !p.derived_doc.is_empty() {
        h.push_str(&format!(" [default: {}]", p.derived_doc.replace('_', "-")));
    }
    h
}

fn arg(p: &'static Param) -> Arg {
    let long = flag(p.key).trim_start_matches("--").to_string();
    let a = Arg::new(p.key).long(long).help(help(p));
    let defaults = ScheduleConfig::default();
    match p.kind {
        Kind::Flag => a.action(ArgAction::SetTrue),
        Kind::Number { .. } | Kind::Optional { .. } => {
            let a = a
                .value_parser(clap::value_parser!(f64))
                .allow_negative_numbers(true)
                .value_name(p.key.to_uppercase());
            match (p.kind, p.derive) {
                (Kind::Number { .. }, None) => a.default_value(p.format(&defaults)),
                _ => a,
            }
        }
        Kind::PairList { .. } => a.allow_hyphen_values(true).value_name("LIST"),
        Kind::Choice { names } => a
            .value_parser(PossibleValuesParser::new(names.iter().copied()))
            .default_value(p.format(&defaults)),
    }
}

impl Args for ScheduleArgs {
    fn augment_args(cmd: Command) -> Command {
        let method = Arg::new("method")
            .long("method")
            .help("Frequency schedule")
            .value_parser(method_parser())
            .default_value(Method::ROPE.name());
        all_params()
            .into_iter()
            .fold(cmd.arg(method), |c, p| c.arg(arg(p)))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// A value as clap parsed it, in the parameter's shape; `None` when the option was not given.
fn given(m: &ArgMatches, p: &'static Param) -> Option<Given> {
    let explicit = m
        .value_source(p.key)
        .is_some_and(|s| s == clap::parser::ValueSource::CommandLine);
    if !explicit {
        return None;
    }
    let value = match p.kind {
        Kind::Flag => Value::Flag(!is_default_on_flag(p)),
        Kind::Number { .. } => Value::Number(*m.get_one::<f64>(p.key)?),
        Kind::Optional { .. } => Value::Optional(Some(*m.get_one::<f64>(p.key)?)),
        Kind::PairList { .. } => return Some(Given::Text(m.get_one::<String>(p.key)?.clone())),
        Kind::Choice { names } => {
            let s = m.get_one::<String>(p.key)?;
            Value::Choice(names.iter().find(|n| **n == s.as_str())?)
        }
    };
    Some(Given::Value(value))
}

impl FromArgMatches for ScheduleArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let method = *m.get_one::<Method>("method").unwrap_or(&Method::ROPE);
        let mut values = Vec::new();
        for p in all_params() {
            if let Some(v) = given(m, p) {
                values.push((p, v));
            }
        }
        Ok(ScheduleArgs { method, values })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}
