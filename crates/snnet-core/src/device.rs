//! Devices by name: the library equivalent of the CLI's `--device`.
//!
//! Burn picks the backend from the [`Device`] at run time; cargo features choose which backends
//! are compiled in (`flex`, the default; `ndarray`; `wgpu`; `cuda`; `tch`). [`DeviceSpec`] parses
//! the names a user types and turns them into a device, or into a clear error naming the feature
//! that a build lacks.
//!
//! ```
//! use snnet_core::DeviceSpec;
//!
//! let spec: DeviceSpec = "cpu".parse()?;
//! let device = spec.device()?; // Burn's Flex backend
//! assert_eq!(spec.to_string(), "cpu");
//! assert!("cuda:1".parse::<DeviceSpec>().is_ok()); // parses in every build...
//! # #[cfg(not(feature = "cuda"))]
//! assert!("cuda:1".parse::<DeviceSpec>()?.device().is_err()); // ...runs where compiled in
//! # Ok::<(), snnet_core::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// A LibTorch device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TchDevice {
    /// LibTorch on the CPU.
    Cpu,
    /// LibTorch on CUDA GPU `N`.
    Cuda(usize),
}

/// A device by name: `cpu` (Flex, the default backend), `ndarray`, `wgpu` / `wgpu:N` (the
/// default adapter, or discrete GPU `N`), `cuda` / `cuda:N`, `tch` / `tch:cpu` / `tch:cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// Burn's Flex backend on the CPU (pure Rust; feature `flex`, on by default).
    #[default]
    Cpu,
    /// Burn's NdArray backend on the CPU (feature `ndarray`).
    NdArray,
    /// wgpu (Vulkan, Metal, DX12): `None` for the default adapter (the best one found; Mesa's
    /// lavapipe on a machine without a GPU), `Some(n)` for discrete GPU `n` (feature `wgpu`).
    Wgpu(Option<usize>),
    /// CUDA GPU `n` through CubeCL (feature `cuda`; its build downloads an LLVM bundle).
    Cuda(usize),
    /// LibTorch (feature `tch`; needs PyTorch's libraries, see the README's Backends section).
    Tch(TchDevice),
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let unknown = || Error::UnknownDevice(s.to_owned());
        let index = |n: &str| n.parse::<usize>().map_err(|_| unknown());
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split(':').collect();
        Ok(match parts.as_slice() {
            ["cpu" | "flex"] => Self::Cpu,
            ["ndarray"] => Self::NdArray,
            ["wgpu"] => Self::Wgpu(None),
            ["wgpu", n] => Self::Wgpu(Some(index(n)?)),
            ["cuda"] => Self::Cuda(0),
            ["cuda", n] => Self::Cuda(index(n)?),
            ["tch"] | ["tch", "cpu"] => Self::Tch(TchDevice::Cpu),
            ["tch", "cuda"] => Self::Tch(TchDevice::Cuda(0)),
            ["tch", "cuda", n] => Self::Tch(TchDevice::Cuda(index(n)?)),
            _ => return Err(unknown()),
        })
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::NdArray => write!(f, "ndarray"),
            Self::Wgpu(None) => write!(f, "wgpu"),
            Self::Wgpu(Some(n)) => write!(f, "wgpu:{n}"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Tch(TchDevice::Cpu) => write!(f, "tch:cpu"),
            Self::Tch(TchDevice::Cuda(n)) => write!(f, "tch:cuda:{n}"),
        }
    }
}

/// Written as its name (`"cuda:1"`), as a user types it, e.g. in a run's saved config.
impl serde::Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read from its name (`"cuda:1"`); an unknown name is an error naming it.
impl<'de> serde::Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl DeviceSpec {
    /// A comma-separated list of device names (`"cuda:0,cuda:1"`, `"cpu,cpu"`): the library
    /// equivalent of the CLI's `--devices`, one data-parallel shard per entry.
    ///
    /// ```
    /// use snnet_core::DeviceSpec;
    ///
    /// let specs = DeviceSpec::parse_list("cpu, cpu")?;
    /// assert_eq!(specs, [DeviceSpec::Cpu, DeviceSpec::Cpu]);
    /// assert!(DeviceSpec::parse_list("cpu,gpu").unwrap_err().to_string().contains("`gpu`"));
    /// # Ok::<(), snnet_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownDevice`] naming the first entry that is no device (an empty entry too).
    pub fn parse_list(list: &str) -> Result<Vec<Self>> {
        list.split(',').map(str::parse).collect()
    }

    /// The cargo feature that compiles this device's backend in.
    pub fn feature(&self) -> &'static str {
        match self {
            Self::Cpu => "flex",
            Self::NdArray => "ndarray",
            Self::Wgpu(_) => "wgpu",
            Self::Cuda(_) => "cuda",
            Self::Tch(_) => "tch",
        }
    }

    /// Whether this build includes the device's backend.
    pub fn is_compiled(&self) -> bool {
        match self {
            Self::Cpu => cfg!(feature = "flex"),
            Self::NdArray => cfg!(feature = "ndarray"),
            Self::Wgpu(_) => cfg!(feature = "wgpu"),
            Self::Cuda(_) => cfg!(feature = "cuda"),
            Self::Tch(_) => cfg!(feature = "tch"),
        }
    }

    /// The device (no tensors are created: a GPU is only touched by the first operation).
    ///
    /// # Errors
    /// [`Error::BackendNotCompiled`] when this build lacks the device's backend.
    pub fn device(&self) -> Result<Device> {
        let missing = |note: &'static str| Error::BackendNotCompiled {
            device: self.to_string(),
            feature: self.feature(),
            note,
        };
        match *self {
            #[cfg(feature = "flex")]
            Self::Cpu => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            Self::NdArray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Self::Wgpu(None) => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "wgpu")]
            Self::Wgpu(Some(n)) => Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(n))),
            #[cfg(feature = "cuda")]
            Self::Cuda(n) => Ok(Device::cuda(n)),
            #[cfg(feature = "tch")]
            Self::Tch(TchDevice::Cpu) => Ok(Device::libtorch()),
            #[cfg(feature = "tch")]
            Self::Tch(TchDevice::Cuda(n)) => Ok(Device::libtorch_cuda(n)),
            Self::Cuda(_) => Err(missing(
                "; its build downloads an LLVM bundle, see the README's Backends section",
            )),
            Self::Tch(_) => Err(missing(
                "; it links PyTorch's libraries, see the README's Backends section",
            )),
            #[allow(unreachable_patterns)]
            _ => Err(missing("")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_errors() {
        for (name, spec) in [
            ("cpu", DeviceSpec::Cpu),
            ("ndarray", DeviceSpec::NdArray),
            ("wgpu", DeviceSpec::Wgpu(None)),
            ("wgpu:1", DeviceSpec::Wgpu(Some(1))),
            ("cuda:0", DeviceSpec::Cuda(0)),
            ("tch:cpu", DeviceSpec::Tch(TchDevice::Cpu)),
            ("tch:cuda:2", DeviceSpec::Tch(TchDevice::Cuda(2))),
        ] {
            assert_eq!(name.parse::<DeviceSpec>().unwrap(), spec);
            assert_eq!(spec.to_string(), name);
        }
        assert_eq!("CUDA".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("flex".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        for bad in ["", "gpu", "cuda:x", "wgpu:1:2", "tch:mps", "cuda:-1"] {
            assert!(
                matches!(bad.parse::<DeviceSpec>(), Err(Error::UnknownDevice(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn lists_and_serde_use_the_names() {
        assert_eq!(
            DeviceSpec::parse_list("wgpu:0,cuda:1").unwrap(),
            [DeviceSpec::Wgpu(Some(0)), DeviceSpec::Cuda(1)]
        );
        for bad in ["", "cpu,", "cpu,,cpu", "cpu,tpu"] {
            assert!(
                matches!(DeviceSpec::parse_list(bad), Err(Error::UnknownDevice(_))),
                "{bad}"
            );
        }
        let json = serde_json::to_string(&[DeviceSpec::Cpu, DeviceSpec::Cuda(1)]).unwrap();
        assert_eq!(json, r#"["cpu","cuda:1"]"#);
        let back: Vec<DeviceSpec> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [DeviceSpec::Cpu, DeviceSpec::Cuda(1)]);
        let err = serde_json::from_str::<DeviceSpec>(r#""gpu""#).unwrap_err();
        assert!(err.to_string().contains("`gpu`"), "{err}");
    }

    #[test]
    fn a_backend_not_compiled_in_names_its_feature() {
        assert!(DeviceSpec::Cpu.device().is_ok());
        if !cfg!(feature = "cuda") {
            let err = DeviceSpec::Cuda(0).device().unwrap_err();
            assert!(matches!(
                err,
                Error::BackendNotCompiled {
                    feature: "cuda",
                    ..
                }
            ));
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
        if !cfg!(feature = "tch") {
            let err = DeviceSpec::Tch(TchDevice::Cpu).device().unwrap_err();
            assert!(err.to_string().contains("--features tch"), "{err}");
        }
    }
}
