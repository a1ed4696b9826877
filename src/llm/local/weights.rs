//! Serving the GGUF file's 4-bit weights to the model loader as f32 tensors.

use super::*;

/// Describes the GGUF file's weights as f32 tensors served by an [`ExpandedWeights`] reader, so
/// that loading the model from them makes every matrix product run in f32.
pub(super) fn dequantize<R: Read + Seek>(
    content: Content,
    source: R,
    device: &Device,
) -> (Content, ExpandedWeights<R>) {
    let Content { magic, metadata, tensor_infos, tensor_data_offset } = content;
    let mut names: Vec<String> = tensor_infos.keys().cloned().collect();
    names.sort();
    let mut expanded = std::collections::HashMap::with_capacity(names.len());
    let mut entries = Vec::with_capacity(names.len());
    let mut end = 0u64;
    for name in names {
        let Some(info) = tensor_infos.get(&name) else {
            continue;
        };
        let start = end;
        end += info.shape.elem_count() as u64 * 4;
        expanded.insert(name, TensorInfo { ggml_dtype: GgmlDType::F32, shape: info.shape.clone(), offset: start });
        entries.push(ExpandedTensor {
            start,
            end,
            original: TensorInfo { ggml_dtype: info.ggml_dtype, shape: info.shape.clone(), offset: info.offset },
        });
    }
    let content = Content { magic, metadata, tensor_infos: expanded, tensor_data_offset: 0 };
    let weights = ExpandedWeights {
        source,
        source_data_offset: tensor_data_offset,
        device: device.clone(),
        entries,
        len: end,
        position: 0,
        current: None,
    };
    (content, weights)
}

/// A virtual file holding every weight of a GGUF file as little-endian f32 values, one tensor
/// after another. A tensor is read from the real file and expanded only when its bytes are
/// read, and only one expanded tensor is held at a time, so loading never needs a second full
/// copy of the weights in memory.
pub(super) struct ExpandedWeights<R> {
    source: R,
    source_data_offset: u64,
    device: Device,
    /// Sorted by position, back to back.
    entries: Vec<ExpandedTensor>,
    len: u64,
    position: u64,
    /// The tensor last expanded: its index in `entries` and its bytes.
    current: Option<(usize, Vec<u8>)>,
}

struct ExpandedTensor {
    start: u64,
    end: u64,
    original: TensorInfo,
}

impl<R: Read + Seek> ExpandedWeights<R> {
    fn expand(&mut self, index: usize) -> io::Result<Vec<u8>> {
        let entry = &self.entries[index];
        let values = entry
            .original
            .read(&mut self.source, self.source_data_offset, &self.device)
            .and_then(|tensor| tensor.dequantize(&self.device))
            .and_then(|tensor| tensor.flatten_all())
            .and_then(|tensor| tensor.to_vec1::<f32>())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        if bytes.len() as u64 != entry.end - entry.start {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a weight expanded to an unexpected size"));
        }
        Ok(bytes)
    }
}

impl<R: Read + Seek> Read for ExpandedWeights<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let index = self.entries.partition_point(|e| e.end <= self.position);
        let Some(entry) = self.entries.get(index) else {
            return Ok(0);
        };
        let start = entry.start;
        if self.current.as_ref().map(|(i, _)| *i) != Some(index) {
            // Drop the previous tensor before expanding the next one.
            self.current = None;
            self.current = Some((index, self.expand(index)?));
        }
        let Some((_, bytes)) = &self.current else {
            return Ok(0);
        };
        let from =
            usize::try_from(self.position - start).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let available = &bytes[from.min(bytes.len())..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl<R> Seek for ExpandedWeights<R> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let target = match to {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.position.checked_add_signed(d),
        };
        let Some(target) = target else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the weights"));
        };
        self.position = target;
        Ok(target)
    }
}
