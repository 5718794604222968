// Generated from the form model (crate coform-model) — do not edit.
// Regenerate: COFORM_REGENERATE=1 cargo test -p coform-model

/** Every component type, in the palette's order. */
export const COMPONENT_TYPES = ['text', 'textarea', 'number', 'email', 'phone', 'date', 'select', 'radio', 'checkbox', 'file', 'section', 'heading', 'paragraph', 'button'] as const

/** Most components in one template. */
export const MAX_COMPONENTS = 2000

/** Deepest nesting of sections. */
export const MAX_DEPTH = 16

/** Most characters of a component id. */
export const MAX_ID_CHARS = 100

/** Most characters of an `index`. */
export const MAX_INDEX_CHARS = 100

/** Most options of a choice component. */
export const MAX_OPTIONS = 500

/** A component type the server knows. */
export type KnownComponentType = typeof COMPONENT_TYPES[number]

/** What a button does. */
export type ButtonAction = "submit" | "reset" | "button"

/** Properties of a button. */
export interface ButtonProperties {
  /** Action */
  action?: ButtonAction
  /** Disabled */
  disabled?: boolean
  /** Hidden */
  hidden?: boolean
  /** Text: Its text; the label when absent. */
  text?: string
}

/** Properties of a checkbox: a single box without `options`, a group with them. */
export interface CheckboxProperties {
  /** Default value: A single box: checked or not; a group: the values checked. */
  defaultValue?: Checked
  /** Disabled */
  disabled?: boolean
  /** Help text: Shown under the field. */
  helpText?: string
  /** Hidden */
  hidden?: boolean
  /** Layout */
  layout?: Layout
  /** Field name: The field's name in submitted data; the component's id when absent. */
  name?: string
  /** Options: Distinct values; none for a single box. */
  options?: Array<Choice>
  /** Read-only */
  readOnly?: boolean
}

/** A checkbox's default: checked or not (a single box), or the option values checked (a group). */
export type Checked = boolean | Array<string>

/** One option of a select, radio group or checkbox group. */
export interface Choice {
  /** What is shown; the value when absent. */
  label?: string
  /** What is submitted; distinct within a component. */
  value: string
}

export type IsoDate = string

/** Properties of a date input. */
export interface DateProperties {
  /** Default value */
  defaultValue?: IsoDate
  /** Disabled */
  disabled?: boolean
  /** Help text: Shown under the field. */
  helpText?: string
  /** Hidden */
  hidden?: boolean
  /** Latest: Latest date the control offers. */
  max?: IsoDate
  /** Earliest: Earliest date the control offers (`min` ≤ `max`). */
  min?: IsoDate
  /** Field name: The field's name in submitted data; the component's id when absent. */
  name?: string
  /** Read-only */
  readOnly?: boolean
}

/** Validation rules of a date input. */
export interface DateValidation {
  /** Custom validation: Source of a custom validation function: data, never run by the server. */
  customValidation?: string
  /** Latest */
  max?: IsoDate
  /** Error message: Shown when a rule fails. */
  message?: string
  /** Earliest */
  min?: IsoDate
  /** Required: The person filling the form must answer. */
  required?: boolean
  /** Custom rules: Names of custom rules the client knows (never run by the server). */
  rules?: Array<string>
}

/** Properties of a file upload. */
export interface FileProperties {
  /** Accepted types: File types: `.ext` or `type/subtype` (subtype may be `*`), comma-separated. */
  accept?: string
  /** Disabled */
  disabled?: boolean
  /** Help text: Shown under the field. */
  helpText?: string
  /** Hidden */
  hidden?: boolean
  /** Largest size (bytes): Largest file, in bytes. */
  maxSize?: number
  /** Multiple: Several files may be chosen. */
  multiple?: boolean
  /** Field name: The field's name in submitted data; the component's id when absent. */
  name?: string
  /** Read-only */
  readOnly?: boolean
}

/** Properties of a heading. */
export interface HeadingProperties {
  /** Hidden */
  hidden?: boolean
  /** Level: 1 (largest) to 6. */
  level?: number
  /** Text: Its text; the label when absent. */
  text?: string
}

/** Validation rules of inputs without length or range rules. */
export interface InputValidation {
  /** Custom validation: Source of a custom validation function: data, never run by the server. */
  customValidation?: string
  /** Error message: Shown when a rule fails. */
  message?: string
  /** Required: The person filling the form must answer. */
  required?: boolean
  /** Custom rules: Names of custom rules the client knows (never run by the server). */
  rules?: Array<string>
}

/** How options are laid out. */
export type Layout = "vertical" | "horizontal"

/** Template-wide fields. Keys beyond these are kept as they are (any JSON nested at most 16 levels). */
export interface Meta {
  /** Category */
  category?: string
  /** Description */
  description?: string
  /** Name */
  name?: string
  /** Tags: Short labels to find templates by. */
  tags?: Array<string>
  [key: string]: unknown
}

/** Components that collect nothing have no validation rules. */
export interface NoValidation {}

/** Properties of a number input. */
export interface NumberProperties {
  /** Default value */
  defaultValue?: number
  /** Disabled */
  disabled?: boolean
  /** Help text: Shown under the field. */
  helpText?: string
  /** Hidden */
  hidden?: boolean
  /** Maximum: Highest value the control offers. */
  max?: number
  /** Minimum: Lowest value the control offers (`min` ≤ `max`). */
  min?: number
  /** Field name: The field's name in submitted data; the component's id when absent. */
  name?: string
  /** Placeholder: Shown in the empty field. */
  placeholder?: string
  /** Read-only */
  readOnly?: boolean
  /** Step: Increment of the control. */
  step?: number
}

/** Validation rules of a number input. */
export interface NumberValidation {
  /** Custom validation: Source of a custom validation function: data, never run by the server. */
  customValidation?: string
  /** Maximum */
  max?: number
  /** Error message: Shown when a rule fails. */
  message?: string
  /** Minimum */
  min?: number
  /** Required: The person filling the form must answer. */
  required?: boolean
  /** Custom rules: Names of custom rules the client knows (never run by the server). */
  rules?: Array<string>
}

/** Properties of a paragraph of text. */
export interface ParagraphProperties {
  /** Hidden */
  hidden?: boolean
  /** Text */
  text?: string
}

/** Where the designer placed a component on its canvas. */
export interface Position {
  h?: number
  w?: number
  x?: number
  y?: number
}

/** Properties of a group of radio buttons. */
export interface RadioProperties {
  /** Default value: An option's value. */
  defaultValue?: string
  /** Disabled */
  disabled?: boolean
  /** Help text: Shown under the field. */
  helpText?: string
  /** Hidden */
  hidden?: boolean
  /** Layout */
  layout?: Layout
  /** Field name: The field's name in submitted data; the component's id when absent. */
  name?: string
  /** Options: At least one, with distinct values. */
  options: Array<Choice>
  /** Read-only */
  readOnly?: boolean
}

/** Properties of a section: a container of other components. */
export interface SectionProperties {
  /** Collapsible: The person filling the form may fold it. */
  collapsible?: boolean
  /** Description: Shown under its title. */
  description?: string
  /** Hidden */
  hidden?: boolean
}

/** Properties of a drop-down list. */
export interface SelectProperties {
  /** Default value: An option's value; an array of them when `multiple`. */
  defaultValue?: Selection
  /** Disabled */
  disabled?: boolean
  /** Help text: Shown under the field. */
  helpText?: string
  /** Hidden */
  hidden?: boolean
  /** Multiple: Several options may be chosen. */
  multiple?: boolean
  /** Field name: The field's name in submitted data; the component's id when absent. */
  name?: string
  /** Options: At least one, with distinct values. */
  options: Array<Choice>
  /** Placeholder: Shown while nothing is chosen. */
  placeholder?: string
  /** Read-only */
  readOnly?: boolean
}

/** A select's default: one option value, or several when `multiple`. */
export type Selection = string | Array<string>

/** Look of a component. */
export interface Styling {
  /** Custom styles: CSS property name (letters, digits, `-`) → value. */
  customStyles?: Record<string, string>
  /** Theme */
  theme?: string
}

/** Properties of a one-line text input (`text`, `email`, `phone`). */
export interface TextProperties {
  /** Autocomplete: A browser autofill hint (`name`, `email`, `tel`, ...). */
  autocomplete?: string
  /** Default value */
  defaultValue?: string
  /** Disabled */
  disabled?: boolean
  /** Help text: Shown under the field. */
  helpText?: string
  /** Hidden */
  hidden?: boolean
  /** Field name: The field's name in submitted data; the component's id when absent. */
  name?: string
  /** Placeholder: Shown in the empty field. */
  placeholder?: string
  /** Read-only */
  readOnly?: boolean
}

/** Validation rules of free-text inputs. */
export interface TextValidation {
  /** Custom validation: Source of a custom validation function: data, never run by the server. */
  customValidation?: string
  /** Longest */
  maxLength?: number
  /** Error message: Shown when a rule fails. */
  message?: string
  /** Shortest */
  minLength?: number
  /** Pattern: A JavaScript regular expression the answer must match: data, never compiled by the server. */
  pattern?: string
  /** Required: The person filling the form must answer. */
  required?: boolean
  /** Custom rules: Names of custom rules the client knows (never run by the server). */
  rules?: Array<string>
}

/** Properties of a multi-line text input. */
export interface TextareaProperties {
  /** Default value */
  defaultValue?: string
  /** Disabled */
  disabled?: boolean
  /** Help text: Shown under the field. */
  helpText?: string
  /** Hidden */
  hidden?: boolean
  /** Field name: The field's name in submitted data; the component's id when absent. */
  name?: string
  /** Placeholder: Shown in the empty field. */
  placeholder?: string
  /** Read-only */
  readOnly?: boolean
  /** Rows: Visible lines. */
  rows?: number
}

/** What every component has besides its type-specific fields. */
export interface ComponentCommon {
  /** Equals the component's key in `components`: 1–100 characters without spaces or control characters. */
  id: string
  /** Fractional index: order among siblings, compared byte by byte, then by id. */
  index: string
  /** Label */
  label?: string
  /** The `section` it sits in; `null` or absent at the top level. */
  parent?: string | null
  /** Where the designer placed it on its canvas. */
  position?: Position
  /** Its look. */
  styling?: Styling
}

/** Short text: One line of text. */
export interface TextComponent extends ComponentCommon {
  properties?: TextProperties
  type: "text"
  validation?: TextValidation
}

/** Long text: Several lines of text. */
export interface TextareaComponent extends ComponentCommon {
  properties?: TextareaProperties
  type: "textarea"
  validation?: TextValidation
}

/** Number: A number. */
export interface NumberComponent extends ComponentCommon {
  properties?: NumberProperties
  type: "number"
  validation?: NumberValidation
}

/** E-mail: An e-mail address. */
export interface EmailComponent extends ComponentCommon {
  properties?: TextProperties
  type: "email"
  validation?: TextValidation
}

/** Phone: A phone number. */
export interface PhoneComponent extends ComponentCommon {
  properties?: TextProperties
  type: "phone"
  validation?: TextValidation
}

/** Date: A calendar date. */
export interface DateComponent extends ComponentCommon {
  properties?: DateProperties
  type: "date"
  validation?: DateValidation
}

/** Drop-down: One (or several) of a list, in a drop-down. */
export interface SelectComponent extends ComponentCommon {
  properties?: SelectProperties
  type: "select"
  validation?: InputValidation
}

/** Radio buttons: One of a list of radio buttons. */
export interface RadioComponent extends ComponentCommon {
  properties?: RadioProperties
  type: "radio"
  validation?: InputValidation
}

/** Checkboxes: A single checkbox, or a group of them. */
export interface CheckboxComponent extends ComponentCommon {
  properties?: CheckboxProperties
  type: "checkbox"
  validation?: InputValidation
}

/** File upload: A file upload. */
export interface FileComponent extends ComponentCommon {
  properties?: FileProperties
  type: "file"
  validation?: InputValidation
}

/** Section: A container: other components name it as their `parent`. */
export interface SectionComponent extends ComponentCommon {
  properties?: SectionProperties
  type: "section"
  validation?: NoValidation
}

/** Heading: A heading. */
export interface HeadingComponent extends ComponentCommon {
  properties?: HeadingProperties
  type: "heading"
  validation?: NoValidation
}

/** Paragraph: A paragraph of text. */
export interface ParagraphComponent extends ComponentCommon {
  properties?: ParagraphProperties
  type: "paragraph"
  validation?: NoValidation
}

/** Button: A button. */
export interface ButtonComponent extends ComponentCommon {
  properties?: ButtonProperties
  type: "button"
  validation?: NoValidation
}

/** One component of a template's content, by its `type`. */
export type ComponentData =
  | TextComponent
  | TextareaComponent
  | NumberComponent
  | EmailComponent
  | PhoneComponent
  | DateComponent
  | SelectComponent
  | RadioComponent
  | CheckboxComponent
  | FileComponent
  | SectionComponent
  | HeadingComponent
  | ParagraphComponent
  | ButtonComponent

/** The `properties` of each component type. */
export interface PropertiesByType {
  text: TextProperties
  textarea: TextareaProperties
  number: NumberProperties
  email: TextProperties
  phone: TextProperties
  date: DateProperties
  select: SelectProperties
  radio: RadioProperties
  checkbox: CheckboxProperties
  file: FileProperties
  section: SectionProperties
  heading: HeadingProperties
  paragraph: ParagraphProperties
  button: ButtonProperties
}

/** The `validation` rules of each component type. */
export interface ValidationByType {
  text: TextValidation
  textarea: TextValidation
  number: NumberValidation
  email: TextValidation
  phone: TextValidation
  date: DateValidation
  select: InputValidation
  radio: InputValidation
  checkbox: InputValidation
  file: InputValidation
  section: NoValidation
  heading: NoValidation
  paragraph: NoValidation
  button: NoValidation
}

/** Template content: A template's content: `doc.getMap("meta")` and `doc.getMap("components")` as JSON. A missing root means empty. */
export interface TemplateContentData {
  /** Component id → component. Each component's `id` equals its key. */
  components?: Record<string, ComponentData>
  meta?: Meta
}
