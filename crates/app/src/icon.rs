//! The app icon, drawn in code so the window, the tray and the Windows executable share one
//! picture without image files: an orange rounded square with a white flame.
//!
//! `build.rs` includes this file too and uses the `.ico` writer; the binary only needs the pixels.
#![allow(dead_code)]

/// RGBA pixels, row by row from the top, of the icon at `size` × `size`.
pub fn icon_rgba(size: u32) -> Vec<u8> {
    let side = size as f32;
    let mut rgba = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            // Rounded square mask.
            let radius = side * 0.22;
            let dx = (fx - side / 2.0).abs() - (side / 2.0 - radius);
            let dy = (fy - side / 2.0).abs() - (side / 2.0 - radius);
            let outside = dx.max(0.0).hypot(dy.max(0.0)) - radius;
            let alpha = (0.5 - outside).clamp(0.0, 1.0);
            // A flame: a teardrop centred low, white on the gradient.
            let (cx, cy) = (side * 0.5, side * 0.62);
            let (nx, ny) = ((fx - cx) / (side * 0.2), (fy - cy) / (side * 0.3));
            let drop = nx * nx + ny * ny * if ny < 0.0 { 0.35 } else { 1.0 };
            let flame = drop < 1.0;
            let t = fy / side;
            let (r, g, b) = if flame { (255.0, 244.0, 230.0) } else { (255.0, 146.0 - 56.0 * t, 43.0 - 31.0 * t) };
            rgba.extend_from_slice(&[r as u8, g as u8, b as u8, (alpha * 255.0) as u8]);
        }
    }
    rgba
}

/// A Windows `.ico` holding the icon at each of `sizes` (32-bit BMP images, the form every
/// Windows version reads).
pub fn ico(sizes: &[u32]) -> Vec<u8> {
    let images: Vec<Vec<u8>> = sizes.iter().map(|&size| bmp_image(size)).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&[0, 0, 1, 0]);
    out.extend_from_slice(&(sizes.len() as u16).to_le_bytes());
    let mut offset = 6 + 16 * sizes.len() as u32;
    for (&size, image) in sizes.iter().zip(&images) {
        let edge = if size >= 256 { 0 } else { size as u8 };
        out.extend_from_slice(&[edge, edge, 0, 0]);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&32u16.to_le_bytes());
        out.extend_from_slice(&(image.len() as u32).to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += image.len() as u32;
    }
    for image in images {
        out.extend_from_slice(&image);
    }
    out
}

/// BITMAPINFOHEADER, BGRA rows bottom-up, then the (all-visible) AND mask.
fn bmp_image(size: u32) -> Vec<u8> {
    let rgba = icon_rgba(size);
    let mask_row = size.div_ceil(32) * 4;
    let mut out = Vec::new();
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(size as i32).to_le_bytes());
    out.extend_from_slice(&(2 * size as i32).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(&[0u8; 24]);
    for row in (0..size).rev() {
        for column in 0..size {
            let at = ((row * size + column) * 4) as usize;
            out.extend_from_slice(&[rgba[at + 2], rgba[at + 1], rgba[at], rgba[at + 3]]);
        }
    }
    out.resize(out.len() + (mask_row * size) as usize, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ico_holds_every_size() {
        let ico = ico(&[16, 32, 256]);
        assert_eq!(&ico[0..6], &[0, 0, 1, 0, 3, 0]);
        let first_offset = u32::from_le_bytes(ico[18..22].try_into().unwrap()) as usize;
        assert_eq!(first_offset, 6 + 16 * 3);
        assert_eq!(u32::from_le_bytes(ico[first_offset..first_offset + 4].try_into().unwrap()), 40);
        assert_eq!(ico[6 + 32], 0, "256 is written as 0 in the directory");
        let pixels = icon_rgba(64);
        assert_eq!(pixels.len(), 64 * 64 * 4);
        assert_eq!(pixels[3], 0, "the corner is transparent");
        assert_eq!(pixels[(32 * 64 + 32) * 4 + 3], 255, "the middle is opaque");
    }
}
