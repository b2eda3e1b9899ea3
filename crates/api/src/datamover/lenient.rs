//! The root types of VSB and VSR, written out instead of derived, so that an object without
//! `spec` (upstream requires none; its own sample VSR has `spec:` empty) still decodes. One
//! undecodable object would otherwise fail every list and watch of its kind, and so stall the
//! controller for all of them; decoded, it gets a condition that names the missing field.

macro_rules! lenient_root {
    ($root:ident, $crd:ident, $spec:ty, $status:ty) => {
        #[doc = concat!("A `", stringify!($root), "` (its CRD is generated from [`", stringify!($crd), "`]).")]
        #[derive(::serde::Deserialize, Clone, Debug, Default, PartialEq)]
        pub struct $root {
            #[serde(default)]
            pub metadata: ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            #[serde(default)]
            pub spec: $spec,
            #[serde(default)]
            pub status: Option<$status>,
        }

        impl $root {
            pub fn new(name: &str, spec: $spec) -> Self {
                Self {
                    metadata: ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        name: Some(name.to_owned()),
                        ..Default::default()
                    },
                    spec,
                    status: None,
                }
            }
        }

        impl ::serde::Serialize for $root {
            fn serialize<S: ::serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                use ::kube::Resource;
                use ::serde::ser::SerializeStruct;
                let mut obj = ser.serialize_struct(stringify!($root), 5)?;
                obj.serialize_field("apiVersion", &<$crd as Resource>::api_version(&()))?;
                obj.serialize_field("kind", &<$crd as Resource>::kind(&()))?;
                obj.serialize_field("metadata", &self.metadata)?;
                obj.serialize_field("spec", &self.spec)?;
                if let Some(status) = &self.status {
                    obj.serialize_field("status", status)?;
                } else {
                    obj.skip_field("status")?;
                }
                obj.end()
            }
        }

        impl ::kube::Resource for $root {
            type DynamicType = ();
            type Scope = ::kube::core::NamespaceResourceScope;

            fn kind(_: &()) -> ::std::borrow::Cow<'_, str> {
                <$crd as ::kube::Resource>::kind(&())
            }
            fn group(_: &()) -> ::std::borrow::Cow<'_, str> {
                <$crd as ::kube::Resource>::group(&())
            }
            fn version(_: &()) -> ::std::borrow::Cow<'_, str> {
                <$crd as ::kube::Resource>::version(&())
            }
            fn plural(_: &()) -> ::std::borrow::Cow<'_, str> {
                <$crd as ::kube::Resource>::plural(&())
            }
            fn meta(&self) -> &::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(
                &mut self,
            ) -> &mut ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }

        impl $root {
            /// The CRD (from the derived type), with no field required at the top: upstream
            /// requires not even `spec`.
            pub fn crd()
            -> ::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition
            {
                let mut crd = <$crd as ::kube::CustomResourceExt>::crd();
                for version in &mut crd.spec.versions {
                    if let Some(schema) = version
                        .schema
                        .as_mut()
                        .and_then(|s| s.open_api_v3_schema.as_mut())
                    {
                        schema.required = None;
                    }
                }
                crd
            }
        }
    };
}

pub(crate) use lenient_root;
